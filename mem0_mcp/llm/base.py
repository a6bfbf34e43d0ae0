"""The one narrow interface every LLM backend implements, and the messages it takes.

Sync on purpose: the engine runs in worker threads, and a sync call keeps backends simple to
test and to drive from the MCP server's thread bridge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, Required, TypedDict, runtime_checkable


class LLMError(Exception):
    """The model could not be reached, refused, or answered with something unusable."""


@dataclass
class LLMResponse:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0


class TextBlock(TypedDict):
    """A text part of a message."""

    type: Literal["text"]
    text: str


class ImageBlock(TypedDict, total=False):
    """An image in the neutral form: base64 ``data`` with its ``media_type``, or a ``url``.

    Each backend translates it to its own wire format.
    """

    type: Required[Literal["image"]]
    media_type: str
    data: str
    url: str


ContentBlock = TextBlock | ImageBlock


class ChatMessage(TypedDict):
    """One message sent to a model: plain text, or text and image blocks."""

    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


@runtime_checkable
class LLM(Protocol):
    """A chat model: ``complete`` turns a system prompt and ChatMessages into one answer."""

    name: str
    supports_vision: bool
    # True when calls must run on the thread of the request that started them (MCP sampling
    # hops back to that request's event loop); the engine then never calls from its own pool.
    request_bound: bool

    def complete(
        self,
        system: str,
        messages: list[ChatMessage],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        """One completion. ``prompt`` names the template ``system`` was rendered from (e.g.
        "fact_extraction"), for logs and for test doubles that answer by prompt.

        Raises LLMError when the model cannot be reached, refuses, or the backend fails.
        """
        ...
