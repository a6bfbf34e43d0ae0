"""A scripted LLM for tests: queued replies, every prompt recorded."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mem0_mcp.llm.base import ChatMessage, LLMError, LLMResponse

Reply = str | dict | LLMResponse | Exception | Callable[[str, list[ChatMessage]], Any]


@dataclass
class Call:
    system: str
    messages: list[ChatMessage]
    json_output: bool
    max_tokens: int | None
    prompt: str | None = None

    @property
    def text(self) -> str:
        """System prompt plus every text part, for assertions on what the model saw."""
        parts = [self.system]
        for m in self.messages:
            c = m["content"]
            parts += [c] if isinstance(c, str) else [b.get("text", "") for b in c if isinstance(b, dict)]
        return "\n".join(parts)


@dataclass
class FakeLLM:
    replies: Iterable[Reply] = ()
    name: str = "fake"
    supports_vision: bool = False
    request_bound: bool = False
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queue: deque[Reply] = deque(self.replies)

    def push(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def complete(
        self,
        system: str,
        messages: list[ChatMessage],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        call = Call(system, messages, json_output, max_tokens, prompt)
        self.calls.append(call)
        if not self.queue:
            raise AssertionError(f"FakeLLM: no reply queued for call {len(self.calls)}:\n{system[:500]}")
        reply = self.queue.popleft()
        if callable(reply) and not isinstance(reply, LLMResponse):
            reply = reply(system, messages)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, LLMResponse):
            return reply
        text = json.dumps(reply, ensure_ascii=False) if isinstance(reply, dict) else str(reply)
        return LLMResponse(text, len(call.text) // 4, len(text) // 4)


def facts(*items: str) -> dict:
    return {"facts": list(items)}


def decisions(*items: dict) -> dict:
    return {"decisions": list(items)}


__all__ = ["Call", "FakeLLM", "LLMError", "decisions", "facts"]
