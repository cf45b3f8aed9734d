"""Pydantic models built from values known to be valid, without running validation.

:func:`build` makes the snapshots and finished messages that adding chunks up produces, from
a model's fields as :func:`fields_of` reads them (their order, defaults and default
factories), so that no caller lists them by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["ModelFields", "build", "fields_of"]

_M = TypeVar("_M", bound=BaseModel)

# The slots pydantic keeps an instance's state in; model_construct writes the same four.
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__

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
