"""LangChain's standard content blocks in a request: files, audio and images by id become each
provider's own parts (Chat Completions' ``file``/``input_audio``, Anthropic's ``document`` and
``image`` sources), as langchain-openai and langchain-anthropic send them."""

from __future__ import annotations

from typing import Any

from rxagent.chat_models._anthropic import to_anthropic_messages
from rxagent.chat_models._openai import to_openai_messages
from rxagent.messages import HumanMessage

PDF = "JVBERi0xLjQK"


def openai_parts(*blocks: dict[str, Any]) -> Any:
    return to_openai_messages([HumanMessage(content=list(blocks))])[0]["content"]


def anthropic_parts(*blocks: dict[str, Any]) -> Any:
    _, turns = to_anthropic_messages([HumanMessage(content=list(blocks))])
    return turns[0]["content"]


def test_openai_takes_files_inline_or_by_id_and_audio_inline() -> None:
    assert openai_parts(
        {"type": "file", "base64": PDF, "mime_type": "application/pdf",
         "extras": {"filename": "a.pdf"}},
        {"type": "file", "file_id": "file-abc123"},
        {"type": "audio", "base64": "UklGRg", "mime_type": "audio/wav"},
        {"type": "audio", "base64": "SUQz", "mime_type": "audio/mpeg"},
    ) == [
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}",
                                  "filename": "a.pdf"}},
        {"type": "file", "file": {"file_id": "file-abc123"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg", "format": "wav"}},
        {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
    ]


def test_openai_gets_what_it_has_no_part_for_as_written() -> None:
    # Chat Completions takes no video and no file by URL: it refuses them by name.
    video = {"type": "video", "base64": "AAAA", "mime_type": "video/mp4"}
    by_url = {"type": "file", "url": "https://example.com/d.pdf"}
    native = {"type": "file", "file": {"file_id": "file-1"}}
    assert openai_parts(video, by_url, native) == [video, by_url, native]


def test_anthropic_takes_documents_and_images_by_id() -> None:
    assert anthropic_parts(
        {"type": "file", "url": "https://example.com/d.pdf"},
        {"type": "file", "base64": PDF, "mime_type": "application/pdf"},
        {"type": "file", "file_id": "file_011"},
        {"type": "text-plain", "text": "notes", "mime_type": "text/plain", "title": "n.txt"},
        {"type": "image", "file_id": "file_012"},
    ) == [
        {"type": "document", "source": {"type": "url", "url": "https://example.com/d.pdf"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": PDF}},
        {"type": "document", "source": {"type": "file", "file_id": "file_011"}},
        {"type": "document", "title": "n.txt",
         "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
        {"type": "image", "source": {"type": "file", "file_id": "file_012"}},
    ]


def test_anthropics_own_document_blocks_pass_unchanged() -> None:
    native = {"type": "document", "source": {"type": "url", "url": "https://x/d.pdf"}}
    assert anthropic_parts(native) == [native]
