"""The one narrow interface every LLM backend implements.

Sync on purpose: the engine runs in worker threads, and a sync call keeps backends simple to
test and to drive from the MCP server's thread bridge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


class LLMError(Exception):
    """The model could not be reached, refused, or answered with something unusable."""


@dataclass
class LLMResponse:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0


@runtime_checkable
class LLM(Protocol):
    """A chat model. ``messages`` are ``{"role": "user"|"assistant", "content": str | blocks}``.

    Image blocks use the neutral form ``{"type": "image", "media_type", "data"}`` (base64) or
    ``{"type": "image", "url"}``; each backend translates them to its own wire format.
    """

    name: str
    supports_vision: bool

    def complete(
        self,
        system: str,
        messages: list[dict[str, Any]],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        """One completion. ``prompt`` names the template ``system`` was rendered from (e.g.
        "fact_extraction"), for logs and for test doubles that answer by prompt."""
        ...
