"""Without a server LLM the host agent is the memory manager: an add lists the stored memories it
may duplicate, refine or contradict (`related`), and `supersedes` retires the ones it replaces.
With a server LLM, adds infer by default."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.rows import dedup_key, text_hash
from mem0_mcp.errors import InvalidInputError
from tests.support.engine import FakeEmbedder, bundled_memory, make_settings
from tests.support.fake_llm import FakeLLM, facts
from tests.support.server import error_text, fake_server, structured


@pytest.fixture
def mem(tmp_path: Path) -> Memory:
    m = Memory(make_settings(tmp_path / "data"), embedder=FakeEmbedder())
    yield m
    m.close()


def test_a_verbatim_add_lists_related_memories(mem: Memory) -> None:
    old = mem.add("Works as a backend engineer at Stripe", user_id="u").results[0]
    mem.add("Prefers pytest over unittest", user_id="u")
    mem.add("Works as a backend engineer at a bank", user_id="someone else")
    result = mem.add("Works as a research engineer at Anthropic", user_id="u")
    assert [r.id for r in result.related] == [old.id]
    related = result.related[0]
    assert related.memory == "Works as a backend engineer at Stripe" and 0.35 <= related.score < 1
    assert related.created_at and result.hint and "supersedes" in result.hint
    # Nothing near: no related, no hint.
    lone = mem.add("Allergic to peanuts", user_id="u")
    assert lone.related == [] and lone.hint is None


def test_related_sees_adds_still_in_the_journal(mem: Memory) -> None:
    mem.storage.mover.close()  # keep the first add in the journal
    first = mem.add("Lives in Berlin Kreuzberg", user_id="u").results[0]
    assert mem.storage.history.has_pending()
    result = mem.add("Lives in Lisbon Alfama", user_id="u")
    assert [r.id for r in result.related] == [first.id]


def test_supersedes_retires_the_replaced_memory_in_the_same_add(mem: Memory) -> None:
    old = mem.add("Works as a backend engineer at Stripe", user_id="u").results[0]
    new = mem.add("Works as a research engineer at Anthropic", user_id="u", supersedes=[old.id])
    assert new.superseded == [old.id]
    new_id = new.results[0].id
    hits = mem.search("Where does the user work now?", user_id="u").results
    assert [h.id for h in hits] == [new_id]
    both = mem.search("Where does the user work now?", user_id="u", include_superseded=True).results
    retired = next(h for h in both if h.id == old.id)
    assert retired.superseded_by == new_id and retired.superseded_at
    assert mem.get_all(user_id="u").total == 1
    assert mem.get_all(user_id="u", include_superseded=True).total == 2
    assert [h.event for h in mem.history(old.id)] == ["ADD", "DELETE"]
    assert mem.get(old.id).memory == "Works as a backend engineer at Stripe"  # kept, readable


@pytest.mark.parametrize(
    ("supersedes", "field", "words"),
    [
        ("an-id", "supersedes", "list of memory ids"),
        ([5], "supersedes[0]", "memory id"),
        (["nope"], "supersedes[0]", "no memory with id"),
        (["x"] * 21, "supersedes", "at most 20"),
    ],
)
def test_bad_supersedes_write_nothing(mem: Memory, supersedes: Any, field: str, words: str) -> None:
    mem.add("Works at Stripe", user_id="u")
    with pytest.raises(InvalidInputError) as err:
        mem.add("Works at Anthropic", user_id="u", supersedes=supersedes)
    assert str(err.value).startswith(field) and words in str(err.value)
    assert mem.get_all(user_id="u").total == 1


def test_supersedes_checks_the_scope_and_liveness(mem: Memory) -> None:
    theirs = mem.add("Works at Stripe", user_id="someone else").results[0]
    with pytest.raises(InvalidInputError, match="no memory with id"):
        mem.add("Works at Anthropic", user_id="u", supersedes=[theirs.id])
    mine = mem.add("Works at Stripe", user_id="u").results[0]
    mem.add("Works at Anthropic", user_id="u", supersedes=[mine.id])
    with pytest.raises(InvalidInputError, match="already superseded"):
        mem.add("Works at Google", user_id="u", supersedes=[mine.id])


def test_duplicates_ignore_case_whitespace_punctuation_and_unicode_form(mem: Memory) -> None:
    first = mem.add("Prefers dark roast coffee, black, no sugar", user_id="u").results[0]
    again = mem.add("prefers  dark roast coffee black no sugar.", user_id="u").results[0]
    assert (again.event, again.id) == ("NONE", first.id)
    assert dedup_key("Ｃafé  CRÈME!") == dedup_key("café crème")
    assert text_hash("!!!") != text_hash("???")  # punctuation alone is still its own text
    assert mem.get_all(user_id="u").total == 1


def test_the_ascii_duplicate_key_is_the_unicode_rule() -> None:
    # ASCII texts take a shortcut (a translate table): it must give what the general rule gives.
    def general(text: str) -> str:
        folded = unicodedata.normalize("NFKC", text).casefold()
        kept = "".join(" " if unicodedata.category(ch)[0] in "PZC" else ch for ch in folded)
        return " ".join(kept.split()) or " ".join(folded.split())

    every = "".join(chr(c) for c in range(128))
    rng = random.Random(7)
    texts = [every, every[::-1], "Prefers  dark-roast coffee;\tblack (no sugar)!", "", " \n ", "!!!", "|~$"]
    texts += ["".join(rng.choice(every) for _ in range(rng.randrange(1, 40))) for _ in range(500)]
    for text in texts:
        assert dedup_key(text) == general(text), repr(text)


def test_infer_default_auto_infers_with_a_server_llm(tmp_path: Path) -> None:
    llm = FakeLLM([facts("Likes green tea")])
    mem = Memory(make_settings(tmp_path / "a", llm_single_call=False), embedder=FakeEmbedder(), llm=llm)
    try:
        assert mem.default_infer()
        result = mem.add("I really like green tea", user_id="u")
        assert result.inferred and [e.memory for e in result.results] == ["Likes green tea"]
        # An explicit infer still wins.
        assert not mem.add("verbatim please", user_id="u", infer=False).inferred
    finally:
        mem.close()
    for mode, expected in (("false", False), ("true", True)):
        m = Memory(make_settings(tmp_path / mode, infer_default=mode), embedder=FakeEmbedder())
        try:
            assert m.default_infer() is expected
        finally:
            m.close()
    no_llm = Memory(make_settings(tmp_path / "none"), embedder=FakeEmbedder())
    try:
        assert not no_llm.default_infer()
        assert no_llm.add("x y z", user_id="u").reason is None  # verbatim, nothing to explain
    finally:
        no_llm.close()


async def test_the_agent_loop_through_the_mcp_tools(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", user_id="me")
    async with Client(fake_server(settings)) as client:
        first = structured(
            await client.call_tool("add_memory", {"text": "Works as a backend engineer at Stripe"})
        )
        old_id = first["results"][0]["id"]
        second = structured(
            await client.call_tool("add_memory", {"text": "Started a new job as an engineer at Anthropic"})
        )
        assert [r["id"] for r in second["related"]] == [old_id] and second["hint"]
        new_id = second["results"][0]["id"]
        third = structured(
            await client.call_tool(
                "add_memory",
                {"text": "Started a new job as an engineer at Anthropic", "supersedes": [old_id]},
            )
        )
        assert third["results"][0] == {**third["results"][0], "id": new_id, "event": "NONE"}
        assert third["superseded"] == [old_id]
        hits = structured(await client.call_tool("search_memory", {"query": "Where does the user work now?"}))
        assert [h["id"] for h in hits["results"]] == [new_id]
        hits = structured(
            await client.call_tool("search_memory", {"query": "job", "include_superseded": True})
        )
        assert {h["id"]: h["superseded_by"] for h in hits["results"]} == {new_id: None, old_id: new_id}
        listed = structured(await client.call_tool("list_memories", {"include_superseded": True}))
        assert listed["total"] == 2
        bad = await client.call_tool("add_memory", {"text": "x", "supersedes": ["missing"]})
        assert "supersedes[0]" in error_text(bad)
        tools = {t.name: t for t in (await client.list_tools()).tools}
        schema = tools["add_memory"].input_schema["properties"]
        assert "supersedes" in schema and "default" in schema["infer"] and schema["infer"]["default"] is None
        guide = await client.get_prompt("memory_guide")
        assert "supersedes" in guide.messages[0].content.text


@pytest.mark.slow
def test_the_job_change_is_related_with_the_bundled_model(tmp_path: Path) -> None:
    """The issue's own case, with the real model: the old job is listed for the agent to retire."""
    mem = bundled_memory(tmp_path / "data")
    try:
        stripe = mem.add("Works as a backend engineer at Stripe", user_id="u").results[0]
        mem.add("Prefers pytest over unittest", user_id="u")
        result = mem.add("Started a new job at Anthropic", user_id="u")
        assert [r.id for r in result.related] == [stripe.id]
        # Before the agent acts, a question about the present already ranks the newer fact first.
        hits = mem.search("Where does the user work now?", user_id="u").results
        assert hits[0].memory == "Started a new job at Anthropic"
        stale = next(h for h in hits if h.id == stripe.id)
        assert stale.possibly_outdated_by == result.results[0].id
        mem.add("Started a new job at Anthropic", user_id="u", supersedes=[stripe.id])
        top = mem.search("Where does the user work now?", user_id="u").results[0]
        assert top.memory == "Started a new job at Anthropic"
    finally:
        mem.close()


def test_a_fact_told_again_at_another_time_is_a_duplicate(mem: Memory) -> None:
    first = mem.add("Is allergic to peanuts", user_id="u", timestamp="2025-01-01").results[0]
    again = mem.add("is allergic to peanuts.", user_id="u", timestamp="2026-06-01").results[0]
    untimed = mem.add("Is allergic to peanuts", user_id="u").results[0]
    assert (again.event, again.id) == (untimed.event, untimed.id) == ("NONE", first.id)
    # Turns of conversations repeat across sessions and stay separate turns.
    turns = [{"role": "user", "content": "Yes."}, {"role": "assistant", "content": "Great, see you then."}]
    mem.add(turns, user_id="u", timestamp="2025-01-01")
    second = mem.add(turns, user_id="u", timestamp="2025-02-01").results
    assert [e.event for e in second] == ["ADD", "ADD"]
