"""Configurable models: ``init_chat_model()`` without a model, or with ``configurable_fields``.

The model a call uses is chosen when the call is made, from ``config["configurable"]``: the
call's own config, or, for a call made inside a run (the agent's model step, a tool calling a
model), the run's, as LangChain's configurable model reads the config it inherits. A model is
made once per set of parameters and kept, so that calls with the same choice share its pooled
HTTP client (a new model per call would open a new connection each time).

``bind_tools``, ``with_structured_output``, ``bind``, ``with_retry`` and ``with_fallbacks`` are
queued and applied to the chosen model, so that they wrap it whatever the config chooses; the
configurable model stays outermost, where each call's config reaches it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import reactivex

from .._context import current_run
from .._demand import Demand
from .._exceptions import UsageError
from .._messages import AIMessage, AIMessageChunk, BaseMessage
from .._types import ToolSpec
from ..messages import MessageLike
from ._base import BaseChatModel

__all__ = ["ConfigurableChatModel"]

# Models kept per configurable model: one per distinct set of parameters, the oldest dropped.
_KEPT = 32

Queued = tuple[str, tuple[Any, ...], dict[str, Any]]


class ConfigurableChatModel(BaseChatModel):
    """A chat model chosen per call from ``config["configurable"]`` (see the module doc).

    Made by :func:`~rxagent.chat_models.init_chat_model`. With ``config_prefix="first"`` the
    keys are ``first_model``, ``first_temperature``...; without one, ``model``,
    ``temperature``... Only ``configurable_fields`` are read (``"any"``: every parameter).

    Attributes:
        defaults: the parameters given to ``init_chat_model`` (``model`` among them, when
            given), which the config's override.
        configurable_fields: the parameters a config may set, or ``"any"``.
        config_prefix: the prefix of their keys (with its ``_``), or ``""``.
    """

    def __init__(
        self,
        *,
        defaults: Mapping[str, Any],
        configurable_fields: str | Sequence[str],
        config_prefix: str = "",
        queued: Sequence[Queued] = (),
    ) -> None:
        if configurable_fields != "any" and (
            isinstance(configurable_fields, str)
            or not all(isinstance(field, str) for field in configurable_fields)
        ):
            raise UsageError("configurable_fields is 'any' or a list of parameter names, got "
                             f"{configurable_fields!r}")
        super().__init__(model_name=str(defaults.get("model") or ""))
        self.defaults = dict(defaults)
        self.configurable_fields: str | tuple[str, ...] = (
            "any" if configurable_fields == "any" else tuple(configurable_fields))
        if config_prefix and not config_prefix.endswith("_"):
            config_prefix += "_"
        self.config_prefix = config_prefix
        self._queued = list(queued)
        self._kept: OrderedDict[tuple[Any, ...], tuple[dict[str, Any], Any]] = OrderedDict()
        self._lock = threading.Lock()

    # -- choosing the model ----------------------------------------------------------------

    def _chosen_params(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        if config is not None and "configurable" in config:
            configurable = config.get("configurable") or {}
        else:
            run = current_run.get()
            configurable = (run.config.get("configurable") or {}) if run is not None else {}
        if not isinstance(configurable, Mapping):
            raise UsageError(f"config['configurable'] is a dict, got {configurable!r}")
        prefix = self.config_prefix
        params = dict(self.defaults)
        for key, value in configurable.items():
            if not isinstance(key, str) or not key.startswith(prefix):
                continue
            field = key[len(prefix):]
            if self.configurable_fields == "any" or field in self.configurable_fields:
                params[field] = value
        return params

    def chosen(self, config: Mapping[str, Any] | None = None) -> Any:
        """The model (with the queued operations applied) that a call with ``config`` uses;
        inside a run, without a config, the run's config chooses.

        Raises:
            UsageError: no model is chosen (none by default, none in the config).
        """
        params = self._chosen_params(config)
        key = _key(params)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept[1]
        model = self._make(params)
        with self._lock:
            # (The params are kept with the model: the ids in the key stay theirs.)
            self._kept[key] = (params, model)
            while len(self._kept) > _KEPT:
                self._kept.popitem(last=False)
        return model

    # init_chat_model, handed over by _init.py, which imports this module.
    _init_chat_model: Callable[..., BaseChatModel]

    def _make(self, params: dict[str, Any]) -> Any:
        params = dict(params)
        name = params.pop("model", None)
        if not name:
            where = f"'{self.config_prefix}model'"
            raise UsageError(
                "this configurable model has no default model: choose one per call, "
                f"config={{'configurable': {{{where}: 'gpt-5-nano'}}}}"
            )
        model: Any = type(self)._init_chat_model(name, **params)
        for method, args, kwargs in self._queued:
            model = getattr(model, method)(*args, **kwargs)
        return model

    def _chosen_chat_model(self) -> BaseChatModel:
        model = self.chosen()
        if not isinstance(model, BaseChatModel):
            raise UsageError(
                f"a configurable model with {self._queued[-1][0]}() queued answers with "
                "objects, not messages: it cannot be an agent's model"
            )
        return model

    # -- calls: each goes to the chosen model ----------------------------------------------

    def stream(
        self,
        messages: str | Sequence[MessageLike],
        config: Mapping[str, Any] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The chosen model's ``stream``."""
        if tools is not None:
            kwargs["tools"] = tools
        return self.chosen(config).stream(messages, config=config, **kwargs)

    async def ainvoke(
        self,
        messages: str | Sequence[MessageLike],
        config: Mapping[str, Any] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The chosen model's ``ainvoke``."""
        if tools is not None:
            kwargs["tools"] = tools
        return await self.chosen(config).ainvoke(messages, config=config, **kwargs)

    def stream_prepared(
        self, messages: list[BaseMessage], specs: list[ToolSpec], **kwargs: Any
    ) -> reactivex.Observable[AIMessageChunk]:
        return self._chosen_chat_model().stream_prepared(messages, specs, **kwargs)

    async def _reply_prepared(
        self, messages: list[BaseMessage], specs: list[ToolSpec], kwargs: dict[str, Any]
    ) -> AIMessage:
        return await self._chosen_chat_model()._reply_prepared(messages, specs, kwargs)

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        await self._chosen_chat_model()._produce(messages, tools, emit, demand, **kwargs)

    @property
    def profile(self) -> dict[str, Any] | None:
        """The profile of the model a call would choose now; ``None`` while none is."""
        params = self._chosen_params(None)
        if not params.get("model"):
            return None
        model = self.chosen()
        return model.profile if isinstance(model, BaseChatModel) else None

    @profile.setter
    def profile(self, value: Mapping[str, Any] | None) -> None:
        raise UsageError("a configurable model's profile is its chosen model's: give "
                         "profile=... to init_chat_model")

    # -- operations queued for the chosen model --------------------------------------------

    def _queue(self, method: str, *args: Any, **kwargs: Any) -> ConfigurableChatModel:
        return ConfigurableChatModel(
            defaults=self.defaults, configurable_fields=self.configurable_fields,
            config_prefix=self.config_prefix, queued=[*self._queued, (method, args, kwargs)],
        )

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """``bind_tools`` on whichever model a call chooses."""
        return self._queue("bind_tools", tools, **kwargs)

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:
        """``with_structured_output`` on whichever model a call chooses."""
        return self._queue("with_structured_output", schema, **kwargs)

    def bind(self, **kwargs: Any) -> ConfigurableChatModel:
        """``bind`` on whichever model a call chooses."""
        return self._queue("bind", **kwargs)

    def with_retry(self, **kwargs: Any) -> ConfigurableChatModel:
        """``with_retry`` on whichever model a call chooses."""
        return self._queue("with_retry", **kwargs)

    def with_fallbacks(
        self, fallbacks: Sequence[BaseChatModel], **kwargs: Any
    ) -> ConfigurableChatModel:
        """``with_fallbacks`` on whichever model a call chooses."""
        return self._queue("with_fallbacks", fallbacks, **kwargs)

    def with_config(
        self, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> ConfigurableChatModel:
        """Fix some configurable parameters (``configurable``'s keys, as a call's config
        would set them); tags and metadata go to whichever model a call chooses."""
        given = {**(config or {}), **kwargs}
        fixed = self._chosen_params({"configurable": given.pop("configurable", None) or {}})
        model = ConfigurableChatModel(
            defaults=fixed, configurable_fields=self.configurable_fields,
            config_prefix=self.config_prefix, queued=self._queued,
        )
        return model._queue("with_config", given) if given else model

    def __repr__(self) -> str:
        return (f"ConfigurableChatModel(defaults={self.defaults!r}, "
                f"configurable_fields={self.configurable_fields!r})")


def _key(params: Mapping[str, Any]) -> tuple[Any, ...]:
    # Plain values by value; anything else (a client, a limiter) by identity.
    return tuple(sorted(
        (name, value if isinstance(value, str | int | float | bool | None) else ("id", id(value)))
        for name, value in params.items()
    ))
