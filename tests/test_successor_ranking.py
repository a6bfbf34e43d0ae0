"""A superseded memory passes its evidence to the memory that replaced it: the question it
answered is now the replacement's, even when the replacement shares none of its words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.ranking import Candidate, pass_to_successors
from tests.support.engine import FakeEmbedder, make_settings

QUESTION = "Which company does the backend engineer work for?"


@pytest.fixture
def mem(tmp_path: Path) -> Memory:
    # A gate the fake embedder's cosines can clear only through the replaced memory's words.
    m = Memory(make_settings(tmp_path / "data", search_threshold=0.2), embedder=FakeEmbedder())
    yield m
    m.close()


def add(mem: Memory, text: str, **kw: Any) -> str:
    return mem.add(text, user_id="u", metadata={"topic": "life"}, **kw).results[0].id


@pytest.mark.parametrize("filters", [None, {"topic": "life"}], ids=["in-process copy", "table"])
def test_the_replacement_answers_what_the_replaced_memory_answered(
    mem: Memory, filters: dict[str, str] | None
) -> None:
    old = add(mem, "Works as a backend engineer at Stripe")
    add(mem, "Plays tennis on weekends")
    new = add(mem, "Started a new job at Anthropic", supersedes=[old])
    hits = mem.search(QUESTION, user_id="u", filters=filters).results
    # Before: the new memory shares no word with the question; the gate returned nothing.
    assert hits and hits[0].id == new and old not in {h.id for h in hits}
    shown = mem.search(QUESTION, user_id="u", filters=filters, include_superseded=True).results
    by_id = {h.id: h for h in shown}
    # Asked for, the superseded memory is shown with its own score; the replacement took it.
    assert by_id[old].superseded_by == new and hits[0].score == by_id[old].score


def test_a_chain_of_replacements_ends_at_the_live_memory(mem: Memory) -> None:
    first = add(mem, "Works as a backend engineer at Stripe")
    second = add(mem, "Joined Google in Zurich", supersedes=[first])
    third = add(mem, "Started a new job at Anthropic", supersedes=[second])
    hits = mem.search(QUESTION, user_id="u").results
    assert [h.id for h in hits][:1] == [third] and {first, second}.isdisjoint(h.id for h in hits)


def test_a_replacement_since_deleted_takes_nothing(mem: Memory) -> None:
    old = add(mem, "Works as a backend engineer at Stripe")
    new = add(mem, "Started a new job at Anthropic", supersedes=[old])
    mem.delete(new)
    assert mem.search(QUESTION, user_id="u").results == []


def test_without_superseded_candidates_the_ranking_is_unchanged() -> None:
    a = Candidate(row={"id": "a"}, score=0.9, relevance=0.5)
    b = Candidate(row={"id": "b"}, score=0.4, relevance=0.3)
    assert pass_to_successors([a, b], {}) == [a, b]
    old = Candidate(row={"id": "o", "superseded_at": "t", "superseded_by": "b"}, score=0.95, relevance=0.6)
    ranked = pass_to_successors([old, a, b], {"o": {"id": "b"}})
    assert [c.row["id"] for c in ranked] == ["b", "a"]
    assert (ranked[0].score, ranked[0].relevance) == (0.95, 0.6) and "replaced" in ranked[0].sources


def test_a_supersede_after_searches_of_a_store_without_one_still_passes_evidence(mem: Memory) -> None:
    # The copy leaves the succession columns out while the scope holds no superseded row: the
    # first supersede must bring them back at once.
    old = add(mem, "Works as a backend engineer at Stripe")
    add(mem, "Plays tennis on weekends")
    assert [h.id for h in mem.search(QUESTION, user_id="u").results][:1] == [old]
    new = add(mem, "Started a new job at Anthropic", supersedes=[old])
    hits = mem.search(QUESTION, user_id="u").results
    assert hits and hits[0].id == new and old not in {h.id for h in hits}
