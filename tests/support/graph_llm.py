"""A scripted LLM for graph tests that routes by prompt name: graph extraction and contradiction
calls run in a worker thread concurrently with fact extraction, so one shared queue would race."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mem0_mcp.llm.base import LLMError, LLMResponse

EXTRACTION = "graph_extraction"
CONTRADICTION = "graph_contradiction"
FACTS = "facts"


def kind_of(prompt: str | None) -> str:
    """The queue a call goes to: the graph prompts have their own, every other prompt is FACTS."""
    return prompt if prompt in (EXTRACTION, CONTRADICTION) else FACTS


@dataclass
class RoutingLLM:
    name: str = "routing-fake"
    supports_vision: bool = False
    request_bound: bool = False
    queues: dict[str, deque[Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (kind, system prompt)
    defaults: dict[str, Any] = field(default_factory=dict)  # reply when a kind's queue is empty
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, kind: str, *replies: Any) -> None:
        with self._lock:
            self.queues.setdefault(kind, deque()).extend(replies)

    def graph(self, relations: list[tuple[str, str, str]], types: dict[str, str] | None = None) -> None:
        types = types or {}
        names = {n for r in relations for n in (r[0], r[2])}
        self.push(
            EXTRACTION,
            {
                "entities": [{"name": n, "type": types.get(n, "entity")} for n in sorted(names)],
                "relations": [{"source": s, "relation": r, "destination": d} for s, r, d in relations],
            },
        )

    def complete(
        self,
        system: str,
        messages: list[dict[str, Any]],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        kind = kind_of(prompt)
        with self._lock:
            self.calls.append((kind, system))
            queue = self.queues.get(kind)
            if queue:
                reply = queue.popleft()
            elif kind in self.defaults:
                reply = self.defaults[kind]
            else:
                raise AssertionError(f"RoutingLLM: no {kind} reply queued:\n{system[:300]}")
        if callable(reply):
            reply = reply(system)
        if isinstance(reply, Exception):
            raise reply
        text = json.dumps(reply) if isinstance(reply, dict) else str(reply)
        return LLMResponse(text, len(system) // 4, len(text) // 4)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)


__all__ = ["CONTRADICTION", "EXTRACTION", "FACTS", "LLMError", "RoutingLLM"]
