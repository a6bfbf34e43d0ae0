"""Message content blocks: the one reader behind verbatim adds and the planner's transcript."""

from __future__ import annotations

import base64

import pytest

from mem0_mcp.errors import InvalidInputError
from mem0_mcp.llm import content_parts, transcript, verbatim_text
from mem0_mcp.llm.base import ImageBlock
from mem0_mcp.llm.content import image_block
from mem0_mcp.models import Message

PNG = base64.b64encode(b"\x89PNG fake").decode()


# --------------------------------------------------------------------------- verbatim_text


def test_verbatim_text_keeps_a_string_as_it_is():
    warnings: list[str] = []
    assert verbatim_text("  I like tea \n", "messages[0].content", warnings) == "  I like tea \n"
    assert warnings == []


def test_verbatim_text_joins_text_blocks_with_newlines_and_notes_images():
    warnings: list[str] = []
    content = [
        {"type": "text", "text": "look at this"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image", "source": {"type": "nonsense"}},  # unreadable, still an image: noted
        {"type": "text", "text": "my cat"},
    ]
    assert verbatim_text(content, "messages[2].content", warnings) == "look at this\nmy cat"
    assert warnings == [
        "messages[2].content[1]: image skipped (describing images needs an LLM with vision)",
        "messages[2].content[2]: image skipped (describing images needs an LLM with vision)",
    ]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "audio", "data": "x"},
        {"type": "text", "text": 5},
        {"type": "text"},
        {"text": "no type"},
        "a bare string",
    ],
)
def test_verbatim_text_refuses_other_blocks_naming_the_block(block):
    with pytest.raises(InvalidInputError) as err:
        verbatim_text([{"type": "text", "text": "ok"}, block], "messages[1].content", [])
    assert err.value.field == "messages[1].content[1]"
    assert "content blocks must be" in str(err.value)


# --------------------------------------------------------------------------- content_parts


def test_content_parts_classifies_every_block():
    parts = content_parts(
        [
            {"type": "text", "text": "hi"},
            {"type": "text", "text": 7},
            {"type": "image", "data": PNG, "mimeType": "image/jpeg"},
            {"type": "image_url", "image_url": "ftp://nowhere"},
            {"type": "video"},
            42,
        ]
    )
    assert [(p.index, p.kind) for p in parts] == [
        (0, "text"),
        (1, "text"),
        (2, "image"),
        (3, "image"),
        (4, "unknown"),
        (5, "malformed"),
    ]
    assert (parts[0].text, parts[0].well_formed) == ("hi", True)
    assert (parts[1].text, parts[1].well_formed) == ("7", False)
    assert parts[2].image == {"type": "image", "media_type": "image/jpeg", "data": PNG}
    assert parts[3].image is None and parts[3].type == "image_url"
    assert parts[4].type == "video"


# --------------------------------------------------------------------------- image_block


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            {"type": "image_url", "image_url": {"url": f"data:image/gif;base64,{PNG}"}},
            {"type": "image", "media_type": "image/gif", "data": PNG},
        ),
        (
            {"type": "image_url", "image_url": "https://x.org/a.png"},
            {"type": "image", "url": "https://x.org/a.png"},
        ),
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,not base64!"}}, None),
        ({"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}, None),
        (
            {"type": "image", "source": {"type": "base64", "data": PNG}},
            {"type": "image", "media_type": "image/png", "data": PNG},
        ),
        (
            {"type": "image", "source": {"type": "url", "url": "http://x.org/b"}},
            {"type": "image", "url": "http://x.org/b"},
        ),
        ({"type": "image", "data": PNG}, {"type": "image", "media_type": "image/png", "data": PNG}),
        ({"type": "image", "url": "https://x.org/c"}, {"type": "image", "url": "https://x.org/c"}),
        ({"type": "image"}, None),
        ({"type": "text", "text": "no image"}, None),
    ],
)
def test_image_block_reads_openai_anthropic_and_mcp_forms(block, expected):
    assert image_block(block) == expected


# --------------------------------------------------------------------------- transcript


def test_transcript_lines_name_the_speaker_and_describe_images():
    seen: list[tuple[ImageBlock, str]] = []
    warned: list[str] = []

    def describe(image: ImageBlock, context: str) -> str | None:
        seen.append((image, context))
        return "a grey cat on a sofa"

    messages = [
        Message(role="user", content="  I adopted a cat  ", name="Ana"),
        Message(
            role="user",
            content=[
                {"type": "text", "text": " here she is "},
                {"type": "image", "data": PNG, "mimeType": "image/png"},
                {"type": "text", "text": "Mia"},
            ],
        ),
        Message(role="assistant", content=""),
    ]
    lines = transcript(messages, describe, warned.append)
    assert lines == [
        "Ana (user): I adopted a cat",
        "user: here she is [shared an image: a grey cat on a sofa] Mia",
    ]
    assert seen == [({"type": "image", "media_type": "image/png", "data": PNG}, " here she is  Mia")]
    assert warned == []


def test_transcript_warns_of_blocks_it_cannot_read_and_drops_images_without_description():
    warned: list[str] = []
    messages = [
        Message(
            content=[
                {"type": "audio", "data": "x"},
                {"type": "image", "source": {"type": "nonsense"}},
                {"type": "image_url", "image_url": {"url": "https://x.org/a.png"}},
                {"type": "text", "text": "what I heard"},
            ]
        )
    ]
    assert transcript(messages, lambda image, context: None, warned.append) == ["user: what I heard"]
    assert warned == [
        "a content block of type 'audio' was not understood and skipped",
        "a content block of type 'image' was not understood and skipped",
    ]
