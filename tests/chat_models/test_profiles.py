"""``model.profile``: the figures of well-known models, and what ``profile=`` gives."""

from __future__ import annotations

import pytest

from rxagent import UsageError
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, init_chat_model
from rxagent.testing import ScriptedChatModel


def test_a_known_model_has_its_figures() -> None:
    openai = init_chat_model("gpt-4o-mini").profile
    assert openai is not None
    assert (openai["max_input_tokens"], openai["max_output_tokens"]) == (128_000, 16_384)
    assert openai["tool_calling"] is True
    claude = ChatAnthropic("claude-sonnet-4-5-20250929").profile
    assert claude is not None and claude["max_input_tokens"] == 200_000


def test_an_unknown_model_has_none_until_given_one() -> None:
    local = ChatOpenAI("my-local-model", base_url="http://127.0.0.1:9/v1")
    assert local.profile is None
    assert ScriptedChatModel(["hi"]).profile is None
    local.profile = {"max_input_tokens": 32_000}
    assert local.profile == {"max_input_tokens": 32_000}
    with pytest.raises(UsageError, match="profile is a dict"):
        local.profile = 32_000  # type: ignore[assignment]


def test_profile_given_replaces_the_known_one_and_wrappers_share_it() -> None:
    custom_profile = {
        "max_input_tokens": 100_000,
        # ...
    }
    model = init_chat_model("gpt-5.4", profile=custom_profile)  # as the docs write it
    assert model.profile == custom_profile
    assert model.bind(temperature=0).profile == custom_profile
    assert model.with_retry().profile == custom_profile
    copy = model.profile
    assert copy is not None
    copy["max_input_tokens"] = 1  # a copy: the model's own is unchanged
    assert model.profile == custom_profile
