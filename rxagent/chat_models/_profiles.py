"""The profiles of well-known models: context window, output limit, what they take and do.

The figures are models.dev's (MIT licence), the data LangChain's provider packages ship
(``langchain-openai`` 1.8.1, ``langchain-anthropic`` 1.7.10); a model is found by its exact
name, as LangChain finds it. Give ``profile={...}`` to a model (or ``init_chat_model``) for
one that is not here, or to correct one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["known_profile"]

_OPENAI: dict[str, dict[str, Any]] = {
    "gpt-3.5-turbo": {
        "max_input_tokens": 16385, "max_output_tokens": 4096, "tool_calling": False,
        "structured_output": False, "image_inputs": False, "pdf_inputs": False,
        "reasoning_output": False,
    },
    "gpt-4": {
        "max_input_tokens": 8192, "max_output_tokens": 8192, "tool_calling": True,
        "structured_output": False, "image_inputs": False, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4-turbo": {
        "max_input_tokens": 128000, "max_output_tokens": 4096, "tool_calling": True,
        "structured_output": False, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4.1": {
        "max_input_tokens": 1047576, "max_output_tokens": 32768, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4.1-mini": {
        "max_input_tokens": 1047576, "max_output_tokens": 32768, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4.1-nano": {
        "max_input_tokens": 1047576, "max_output_tokens": 32768, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4o": {
        "max_input_tokens": 128000, "max_output_tokens": 16384, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4o-2024-05-13": {
        "max_input_tokens": 128000, "max_output_tokens": 4096, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4o-2024-08-06": {
        "max_input_tokens": 128000, "max_output_tokens": 16384, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4o-2024-11-20": {
        "max_input_tokens": 128000, "max_output_tokens": 16384, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-4o-mini": {
        "max_input_tokens": 128000, "max_output_tokens": 16384, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": False,
    },
    "gpt-5": {
        "max_input_tokens": 272000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5-chat-latest": {"max_input_tokens": 272000, "pdf_inputs": True},
    "gpt-5-codex": {"max_input_tokens": 272000, "pdf_inputs": True},
    "gpt-5-mini": {
        "max_input_tokens": 272000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5-nano": {
        "max_input_tokens": 272000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5-pro": {
        "max_input_tokens": 272000, "max_output_tokens": 272000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.1": {
        "max_input_tokens": 272000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.1-chat-latest": {"max_input_tokens": 272000, "pdf_inputs": True},
    "gpt-5.1-codex": {"max_input_tokens": 272000, "pdf_inputs": True},
    "gpt-5.1-codex-max": {"max_input_tokens": 272000, "pdf_inputs": True},
    "gpt-5.1-codex-mini": {"max_input_tokens": 272000, "pdf_inputs": True},
    "gpt-5.2": {
        "max_input_tokens": 272000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.2-chat-latest": {"max_input_tokens": 272000, "pdf_inputs": True},
    "gpt-5.2-pro": {
        "max_input_tokens": 272000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": False, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.3-codex": {
        "max_input_tokens": 400000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.3-codex-spark": {
        "max_input_tokens": 128000, "max_output_tokens": 32000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.4": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.4-mini": {
        "max_input_tokens": 400000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.4-nano": {
        "max_input_tokens": 400000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.4-pro": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": False, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.5": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.5-pro": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.6": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.6-luna": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.6-sol": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-5.6-terra": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-6-astra": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-6-luna": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-6-sol": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-6.1-sol": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-6.1-terra": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-daybreak-blue-latest": {
        "max_input_tokens": 1050000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "gpt-daybreak-red-latest": {
        "max_input_tokens": 400000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "o1": {
        "max_input_tokens": 200000, "max_output_tokens": 100000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "o1-pro": {
        "max_input_tokens": 200000, "max_output_tokens": 100000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "o3": {
        "max_input_tokens": 200000, "max_output_tokens": 100000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "o3-mini": {
        "max_input_tokens": 200000, "max_output_tokens": 100000, "tool_calling": True,
        "structured_output": True, "image_inputs": False, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "o3-pro": {
        "max_input_tokens": 200000, "max_output_tokens": 100000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "o4-mini": {
        "max_input_tokens": 200000, "max_output_tokens": 100000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
}

_ANTHROPIC: dict[str, dict[str, Any]] = {
    "claude-fable-5": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-fable-5-1": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-haiku-4-5": {
        "max_input_tokens": 200000, "max_output_tokens": 64000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-haiku-4-5-20251001": {
        "max_input_tokens": 200000, "max_output_tokens": 64000, "tool_calling": True,
        "structured_output": False, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-haiku-5-5": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": False, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-opus-4-5": {
        "max_input_tokens": 200000, "max_output_tokens": 64000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-opus-4-5-20251101": {
        "max_input_tokens": 200000, "max_output_tokens": 64000, "tool_calling": True,
        "structured_output": False, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-opus-4-6": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-opus-4-7": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-opus-4-8": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-opus-5": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-opus-5-5": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-sonnet-4-5": {
        "max_input_tokens": 200000, "max_output_tokens": 64000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-sonnet-4-5-20250929": {
        "max_input_tokens": 200000, "max_output_tokens": 64000, "tool_calling": True,
        "structured_output": False, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-sonnet-4-6": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-sonnet-5": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
    "claude-sonnet-5-5": {
        "max_input_tokens": 1000000, "max_output_tokens": 128000, "tool_calling": True,
        "structured_output": True, "image_inputs": True, "pdf_inputs": True,
        "reasoning_output": True,
    },
}

_BY_PROVIDER = {"openai": _OPENAI, "azure_openai": _OPENAI, "anthropic": _ANTHROPIC}


def known_profile(provider: str, model_name: str) -> dict[str, Any] | None:
    """A copy of the profile of ``model_name`` at ``provider``, or ``None`` if it is unknown."""
    profile = _BY_PROVIDER.get(provider, {}).get(model_name)
    return dict(profile) if profile is not None else None
