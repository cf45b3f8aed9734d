"""Test tools shipped for users: chat models that need no key and no network.

:class:`ScriptedChatModel` replays a script of replies, streamed the way a real provider
streams them; :class:`FunctionChatModel` computes replies (or streams chunks) from a function.
"""

from ._scripted import FunctionChatModel, ModelCall, Reply, ScriptedChatModel

__all__ = ["FunctionChatModel", "ModelCall", "Reply", "ScriptedChatModel"]
