"""The user's text is never lost to an LLM answer: broken, hostile or oversized replies end in a
verbatim add with a reason.

Each reply goes through a real backend (the Anthropic SDK, the OpenAI-compatible client) over a
socket to a local server on 127.0.0.1, then through the engine with real LanceDB and SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.llm.anthropic_llm import AnthropicLLM
from mem0_mcp.llm.openai_compatible import OpenAICompatibleLLM
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.provider_server import completion, message, no_sleep

TEXT = "I moved to Lisbon last spring and I work at a bakery there"


def deep(levels: int) -> str:
    return '{"facts": ' + "[" * levels + '"x"' + "]" * levels + "}"


HOSTILE: dict[str, tuple[str, str]] = {
    # name: (the model's answer, a word the reason must hold)
    "nested 3,000 deep": (deep(3000), "nests deeper"),
    "facts of the wrong types": ('{"facts": [1, null, {"text": 5}, ["x"]]}', "facts[0] is int"),
    "a fact over max_text_bytes": (json.dumps({"facts": ["y" * 70_000]}), "max_text_bytes"),
    "a 4 MiB answer": (json.dumps({"facts": ["z" * (4 * 1024 * 1024)]}), "over the limit"),
    "3,000 facts": (json.dumps({"facts": [f"fact number {i}" for i in range(3000)]}), "max_facts_per_add"),
    "facts not a list": ('{"facts": "Moved to Lisbon"}', "must be a list"),
}


def anthropic(url: str) -> AnthropicLLM:
    return AnthropicLLM(api_key="sk-test", base_url=url, model="claude-haiku-4-5", max_retries=0)


def openai_compatible(url: str) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(base_url=url, model="m", max_retries=0, sleep=no_sleep)


BACKENDS: dict[str, tuple[Callable[[str], Any], Callable[[str], dict]]] = {
    "anthropic": (anthropic, lambda text: message(text)),
    "openai_compatible": (openai_compatible, lambda text: completion(text)),
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("single_call", [False, True], ids=["two-call", "single-call"])
def test_hostile_answer_keeps_the_text_verbatim(tmp_path: Path, serve, backend, case, single_call):
    build, wrap = BACKENDS[backend]
    answer, why = HOSTILE[case]
    server, url = serve((200, {}, wrap(answer)))
    mem = Memory(
        make_settings(tmp_path / "data", llm_single_call=single_call), embedder=FakeEmbedder(), llm=build(url)
    )
    try:
        if single_call:
            # The fused call runs only when the scope already holds a related memory.
            mem.add("I live in Porto and work at a bakery", user_id="u", infer=False)
        result = mem.add(TEXT, user_id="u", infer=True)
        assert not result.inferred
        assert why in (result.reason or ""), result.reason
        assert "stored verbatim" in (result.reason or "")
        assert [(e.event, e.memory) for e in result.results] == [("ADD", TEXT)]
        stored = {item.memory for item in mem.get_all(user_id="u").results}
        assert TEXT in stored
        assert all(len(t) < 1000 for t in stored)
        assert server.requests, "the backend was not called"
        # An answer too large or too deep is not sent back to the model for a repair.
        if why in ("nests deeper", "over the limit"):
            assert len(server.requests) == 1
    finally:
        mem.close()


def test_a_crash_inside_the_planner_still_stores_the_text(tmp_path: Path):
    """Whatever breaks while planning, an accepted add ends stored, with the reason."""

    class Exploding:
        name = "exploding"
        supports_vision = False
        request_bound = False

        def complete(self, *args: Any, **kwargs: Any) -> Any:
            raise ZeroDivisionError("unexpected")

    mem = Memory(make_settings(tmp_path / "data"), embedder=FakeEmbedder(), llm=Exploding())
    try:
        result = mem.add(TEXT, user_id="u", infer=True)
        assert not result.inferred and "ZeroDivisionError" in (result.reason or "")
        assert [e.memory for e in result.results] == [TEXT]
    finally:
        mem.close()


def test_a_rewritten_decision_text_over_the_limit_adds_the_fact_instead(tmp_path: Path, serve):
    """A decision call's answer out of bounds only loses the comparison, never the fact."""
    replies = [
        (200, {}, completion('{"facts": ["Works at a bakery in Lisbon"]}')),
        (
            200,
            {},
            completion(
                json.dumps({"decisions": [{"fact": 0, "event": "UPDATE", "id": 0, "text": "w" * 70_000}]})
            ),
        ),
    ]
    server, url = serve(*replies)
    mem = Memory(
        make_settings(tmp_path / "data", llm_single_call=False),
        embedder=FakeEmbedder(),
        llm=openai_compatible(url),
    )
    try:
        mem.add("Works at a bakery in Porto", user_id="u", infer=False)
        result = mem.add(TEXT, user_id="u", infer=True)
        assert result.inferred
        assert [(e.event, e.memory) for e in result.results] == [("ADD", "Works at a bakery in Lisbon")]
        assert any("max_text_bytes" in w for w in result.warnings), (result.warnings, len(server.requests))
    finally:
        mem.close()
