"""Message content blocks read one way: as text for a verbatim add, as a transcript for the model.

A message's content is a string or a list of blocks in the OpenAI, Anthropic or MCP shape
(``{"type": "text", "text"}``, ``{"type": "image_url", "image_url": {"url"}}``, ``{"type":
"image", "source": {...}}``, ``{"type": "image", "data", "mimeType"}``). :func:`content_parts`
classifies them; :func:`verbatim_text` (the engine's verbatim add, which cannot see images) and
:func:`transcript` (the planner's input, with images described by the model) read the parts.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mem0_mcp.errors import InvalidInputError
from mem0_mcp.llm.base import ImageBlock
from mem0_mcp.models import Message

PartKind = Literal["text", "image", "unknown", "malformed"]
IMAGE_TYPES = ("image", "image_url")
_DATA_URI = re.compile(r"^data:(?P<mt>[\w/+.-]+)?(?:;[\w=-]+)*;base64,(?P<data>.*)$", re.DOTALL)


@dataclass(frozen=True)
class ContentPart:
    """One content block, classified.

    ``kind``: "text", "image" (type image or image_url), "unknown" (an object of another type),
    "malformed" (not an object). ``type`` is the block's "type" as given.
    """

    index: int
    kind: PartKind
    type: object = None
    # Text blocks: their "text" ("" when absent, str() of anything else); ``well_formed`` says
    # whether it is there and a string (the planner reads any text block, a verbatim add only these).
    text: str = ""
    well_formed: bool = True
    # Image blocks in a form a model can be sent; None for an image nobody can read.
    image: ImageBlock | None = None


def content_parts(content: Sequence[object]) -> list[ContentPart]:
    """The blocks of a message's content, in order, each classified (never raises)."""
    parts: list[ContentPart] = []
    for i, block in enumerate(content):
        if not isinstance(block, Mapping):
            parts.append(ContentPart(i, "malformed"))
            continue
        kind = block.get("type")
        if kind == "text":
            text = str(block.get("text", ""))
            parts.append(ContentPart(i, "text", kind, text, well_formed=isinstance(block.get("text"), str)))
        elif kind in IMAGE_TYPES:
            parts.append(ContentPart(i, "image", kind, image=image_block(block)))
        else:
            parts.append(ContentPart(i, "unknown", kind))
    return parts


def verbatim_text(content: str | Sequence[object], field: str, warnings: list[str]) -> str:
    """The text of a message stored as it is: text blocks joined by newlines, images noted.

    ``field`` names the content in errors and warnings (``messages[0].content``); a warning is
    appended to ``warnings`` for each image, since verbatim mode cannot describe it.
    Raises InvalidInputError naming ``field[j]`` for a block that is neither text nor image.
    """
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content_parts(content):
        if part.kind == "text" and part.well_formed:
            texts.append(part.text)
        elif part.kind == "image":
            warnings.append(
                f"{field}[{part.index}]: image skipped (describing images needs an LLM with vision)"
            )
        else:
            raise InvalidInputError(
                f"{field}[{part.index}]",
                "content blocks must be {'type': 'text', 'text': ...} or an image block "
                "({'type': 'image_url', 'image_url': {'url': ...}})",
            )
    return "\n".join(texts)


Describe = Callable[[ImageBlock, str], str | None]
"""Describes an image, given the text written alongside it; None when it cannot."""


def transcript(messages: Sequence[Message], describe: Describe, warn: Callable[[str], None]) -> list[str]:
    """One ``speaker: text`` line per message with text, images replaced by their description.

    ``describe`` is called for every readable image; ``warn`` hears of blocks that were skipped.
    Blocks that are not objects are skipped silently; empty messages give no line.
    """
    lines: list[str] = []
    for message in messages:
        speaker = f"{message.name} ({message.role})" if message.name else message.role
        if isinstance(message.content, str):
            text = message.content.strip()
        else:
            text = _blocks_text(content_parts(message.content), describe, warn)
        if text:
            lines.append(f"{speaker}: {text}")
    return lines


def _blocks_text(parts: list[ContentPart], describe: Describe, warn: Callable[[str], None]) -> str:
    context = " ".join(p.text for p in parts if p.kind == "text")
    pieces: list[str] = []
    for part in parts:
        if part.kind == "malformed":
            continue
        if part.kind == "text":
            pieces.append(part.text.strip())
            continue
        if part.image is None:
            warn(f"a content block of type {part.type!r} was not understood and skipped")
            continue
        described = describe(part.image, context)
        if described:
            pieces.append(f"[shared an image: {described}]")
    return " ".join(p for p in pieces if p)


def image_block(block: Mapping[str, object]) -> ImageBlock | None:
    """The neutral image form of an OpenAI, Anthropic or MCP image block; None if not an image."""
    kind = block.get("type")
    if kind == "image_url":
        ref = block.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        return _from_url(url) if isinstance(url, str) else None
    if kind != "image":
        return None
    source = block.get("source")
    if isinstance(source, dict):
        data, url = source.get("data"), source.get("url")
        if source.get("type") == "base64" and isinstance(data, str):
            return {"type": "image", "media_type": _media_type(source.get("media_type")), "data": data}
        if isinstance(url, str):
            return _from_url(url)
    data, url = block.get("data"), block.get("url")
    if isinstance(data, str):  # MCP ImageContent
        return {
            "type": "image",
            "media_type": _media_type(block.get("mimeType") or block.get("media_type")),
            "data": data,
        }
    if isinstance(url, str):
        return _from_url(url)
    return None


def _media_type(value: object) -> str:
    return value if isinstance(value, str) and value else "image/png"


def _from_url(url: str) -> ImageBlock | None:
    m = _DATA_URI.match(url)
    if m:
        data = m.group("data").strip()
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None
        return {"type": "image", "media_type": m.group("mt") or "image/png", "data": data}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "url": url}
    return None
