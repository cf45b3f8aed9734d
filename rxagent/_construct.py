"""Pydantic models built from values known to be valid, without running validation.

Why: on the per-token path every chunk is one that rxagent has just made itself, from values
it vouches for, and validating it again was the largest single cost per token measured in
LangGraph (about 6 µs of 20, two ``validate_python`` calls a token). So the builders here
fill an instance's ``__dict__`` and pydantic's bookkeeping directly, as ``model_construct``
does, without its loop over the fields.

This is the one module that writes pydantic's internals and the one that reads a model's
fields (their order, defaults and default factories): a field added to a model reaches every
builder with no other change. What these builders make must be indistinguishable from what
validation makes (``==``, repr, dumps, ``model_fields_set``); ``tests/test_construct.py``
checks that field by field, for arbitrary values and for a model with a field added, and
fails when the two diverge.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["ModelFields", "build", "compile_builder", "fields_of"]

_M = TypeVar("_M", bound=BaseModel)

# The slots pydantic keeps an instance's state in; model_construct writes the same four.
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__

# How a fresh container default is spelled in generated code: a literal costs less than a call.
_LITERALS: dict[Any, str] = {dict: "{}", list: "[]"}


@dataclass(frozen=True)
class ModelFields:
    """A model's fields as the builders need them.

    Attributes:
        template: every field, in declaration order, with its default (``None`` for a field
            with a default factory or none at all); copied, it keeps instances' key order.
        defaults: every field that has a default, with it (factories called once).
        factories: the fields whose default is made fresh for each instance, with the factory.
        required: the fields without a default.
    """

    template: dict[str, Any]
    defaults: dict[str, Any]
    factories: dict[str, Callable[[], Any]]
    required: tuple[str, ...]


_FIELDS: dict[type[BaseModel], ModelFields] = {}


def fields_of(cls: type[BaseModel]) -> ModelFields:
    """``cls``'s fields, read once from ``model_fields`` and kept.

    Raises:
        TypeError: the model keeps state these builders do not fill (private attributes,
            ``extra="allow"``).
    """
    found = _FIELDS.get(cls)
    if found is not None:
        return found
    if cls.__private_attributes__ or cls.model_config.get("extra") == "allow":
        raise TypeError(f"{cls.__name__} has private attributes or extras; build it validated")
    template: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    required: list[str] = []
    for name, field in cls.model_fields.items():
        template[name] = None
        if field.is_required():
            required.append(name)
            continue
        defaults[name] = field.get_default(call_default_factory=True)
        if field.default_factory is None:
            template[name] = field.default
        else:
            factories[name] = field.default_factory  # type: ignore[assignment]
    found = _FIELDS[cls] = ModelFields(template, defaults, factories, tuple(required))
    return found


def build(cls: type[_M], values: Mapping[str, Any]) -> _M:
    """An instance of ``cls`` holding ``values``, which are taken as they are.

    ``values`` may name any of the fields, in any order; the others get their defaults. A
    value counts as set (``model_fields_set``) when it differs from the field's default.
    """
    info = fields_of(cls)
    if not values.keys() <= info.template.keys():
        raise TypeError(f"{cls.__name__} has no fields {sorted(values.keys() - info.template)}")
    missing = [name for name in info.required if name not in values]
    if missing:
        raise TypeError(f"{cls.__name__} needs {missing}")
    fields = info.template.copy()
    fields.update(values)
    for name, factory in info.factories.items():
        if name not in values:
            fields[name] = factory()
    defaults = info.defaults
    instance = _new(cls)
    _set_dict(instance, fields)
    _set_fields_set(
        instance,
        {key for key, value in values.items() if key not in defaults or value != defaults[key]},
    )
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


def compile_builder(
    cls: type[_M],
    params: tuple[str, ...],
    *,
    name: str,
    doc: str,
    uncounted: Collection[str] = (),
) -> Callable[..., _M]:
    """A function of ``params`` (positional, one per field of that name) that builds ``cls``.

    For the per-token path: the function is generated from ``cls``'s fields, so it costs
    what a hand-written one would (a copy of the template, a store per field, a literal per
    fresh container) and still follows the model when a field is added.

    - A field whose default is made fresh (``{}``, ``[]``): ``None`` gives a fresh default;
      any other value is stored, and counts as set unless the field is in ``uncounted``
      (fields the model derives itself, which validation never counts).
    - Any other field: the value is stored, and counts as set unless it equals the default.
    - Fields not in ``params`` get their defaults.
    """
    info = fields_of(cls)
    unknown = [param for param in params if param not in info.template]
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {unknown}")
    missing = [field for field in info.required if field not in params]
    if missing:
        raise ValueError(f"{cls.__name__} needs {missing}")
    namespace: dict[str, Any] = {
        "__name__": __name__,
        "_b_template": info.template,
        "_b_cls": cls,
        "_b_new": _new,
        "_b_set_dict": _set_dict,
        "_b_set_fields_set": _set_fields_set,
        "_b_set_extra": _set_extra,
        "_b_set_private": _set_private,
    }
    counted = [param for param in params if param not in uncounted]
    source = _source(name, params, counted, info, namespace)
    filename = f"<rxagent builder {cls.__name__}.{name}>"
    # Registered so that tracebacks and inspect.getsource show the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    function: Callable[..., _M] = namespace[name]
    function.__doc__ = doc
    return function


def _source(
    name: str,
    params: tuple[str, ...],
    counted: list[str],
    info: ModelFields,
    namespace: dict[str, Any],
) -> str:
    # The builder's code; the values it refers to go into ``namespace``.
    lines = [f"def {name}({', '.join(params)}):", "    _b_fields = _b_template.copy()"]
    for field in info.template:
        value = _stored(field, field in params, info, namespace)
        if value is not None:
            lines.append(f"    _b_fields[{field!r}] = {value}")
    # model_fields_set: one set per combination of counted fields, picked by nested
    # conditionals (a bit mask and a table lookup cost twice as much a token).
    for mask in range(2 ** len(counted)):
        namespace[f"_b_given_{mask}"] = {
            param for bit, param in enumerate(counted) if mask >> bit & 1
        }
    tests = [_differs(param, info, namespace) for param in counted]
    lines += [
        "    _b_instance = _b_new(_b_cls)",
        "    _b_set_dict(_b_instance, _b_fields)",
        f"    _b_set_fields_set(_b_instance, {_choice(tests)}.copy())",
        "    _b_set_extra(_b_instance, None)",
        "    _b_set_private(_b_instance, None)",
        "    return _b_instance",
    ]
    return "\n".join(lines) + "\n"


def _choice(tests: list[str], mask: int = 0) -> str:
    # An expression for the set named by ``mask`` plus the bits of ``tests`` that hold.
    if not tests:
        return f"_b_given_{mask}"
    bit = 1 << (len(tests) - 1)
    taken, not_taken = _choice(tests[:-1], mask | bit), _choice(tests[:-1], mask)
    return f"({taken} if {tests[-1]} else {not_taken})"


def _stored(field: str, given: bool, info: ModelFields, namespace: dict[str, Any]) -> str | None:
    # The expression stored for ``field``, or None when the template's value stands.
    factory = info.factories.get(field)
    if factory is None:
        return field if given else None
    fresh = _LITERALS.get(factory)
    if fresh is None:
        namespace[f"_b_factory_{field}"] = factory
        fresh = f"_b_factory_{field}()"
    return f"{fresh} if {field} is None else {field}" if given else fresh


def _differs(param: str, info: ModelFields, namespace: dict[str, Any]) -> str:
    # The test of whether ``param`` counts as set.
    if param in info.factories or info.defaults.get(param, ...) is None:
        return f"{param} is not None"
    if param not in info.defaults:  # required: always given
        return "True"
    namespace[f"_b_default_{param}"] = info.defaults[param]
    return f"{param} != _b_default_{param}"
