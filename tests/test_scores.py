"""A search's score means the same for every query, and a question about nothing remembered
returns nothing (the relevance gate, `search_threshold`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.ranking import TIME_EVIDENCE, fuse
from tests.support.engine import FakeEmbedder, bundled_memory, make_settings


def test_scores_come_from_each_retrievers_own_evidence() -> None:
    dense = [{"id": "a", "_distance": 0.4}, {"id": "b", "_distance": 0.9}]
    text = [{"id": "b", "_score": 3.0, "_coverage": 0.7}, {"id": "c", "_score": 1.0, "_coverage": 0.2}]
    ranked = {c.row["id"]: c for c in fuse(dense, text, vector_weight=0.4, query="q")}
    assert ranked["a"].relevance == pytest.approx(0.6)  # its cosine
    assert ranked["b"].relevance == pytest.approx(0.8)  # its cosine and its share of the query's words
    assert ranked["c"].relevance == pytest.approx(0.2)  # words only: no dense evidence
    # The same hits among weaker ones keep their scores: nothing is relative to the candidates.
    more = fuse([*dense, {"id": "d", "_distance": 0.99}], text, vector_weight=0.4, query="q")
    assert {c.row["id"]: c.relevance for c in more}["a"] == pytest.approx(0.6)


def test_a_memory_of_the_period_the_query_names_carries_that_evidence_too() -> None:
    dense = [
        {"id": "may", "_distance": 0.7, "event_at": "2023-05-20T10:00:00"},
        {"id": "june", "_distance": 0.7, "event_at": "2023-06-20T10:00:00"},
        {"id": "both", "_distance": 0.1},
    ]
    text = [{"id": "both", "_score": 2.0, "_coverage": 0.5}]
    ranked = {
        c.row["id"]: c for c in fuse(dense, text, vector_weight=0.4, query="What happened in May 2023?")
    }
    assert ranked["may"].relevance == pytest.approx(0.3 + TIME_EVIDENCE)
    assert ranked["june"].relevance == pytest.approx(0.3)
    assert ranked["both"].relevance == 1.0  # 0.9 + 0.5, clipped: a score stays in [0, 1]


def test_the_gate_returns_nothing_for_what_was_never_remembered(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path / "data", search_threshold=0.3), embedder=FakeEmbedder())
    try:
        mem.add("Prefers pytest over unittest", user_id="u")
        mem.add("Has a greyhound called Pixel", user_id="u")
        assert mem.search("favourite pizza topping", user_id="u").results == []
        hits = mem.search("prefers pytest", user_id="u").results
        assert hits and hits[0].memory == "Prefers pytest over unittest" and hits[0].score >= 0.3
        # An explicit threshold replaces the gate: 0 returns the ranked list whatever it scores.
        assert mem.search("favourite pizza topping", user_id="u", threshold=0).results
    finally:
        mem.close()


@pytest.mark.slow
def test_the_gate_with_the_bundled_model(tmp_path: Path) -> None:
    mem = bundled_memory(tmp_path / "data", search_threshold=0.25)
    try:
        for fact in ("Prefers pytest over unittest", "Has a greyhound called Pixel", "Lives in Lisbon"):
            mem.add(fact, user_id="u")
        assert mem.search("favourite pizza topping?", user_id="u").results == []
        assert mem.search("Which testing framework does the user like?", user_id="u").results[0].memory == (
            "Prefers pytest over unittest"
        )
    finally:
        mem.close()


def _fruit_store(data: Path, candidates: int) -> Memory:
    mem = Memory(make_settings(data, search_candidates=candidates), embedder=FakeEmbedder())
    # Twenty memories nearer the query's vector than the one it names by a rare word.
    for i in range(20):
        mem.add(f"apple banana cherry date {i}", user_id="u", metadata={"kind": "fruit"})
    mem.add("zeppelin fig", user_id="u", metadata={"kind": "fruit"})
    return mem


def test_a_memory_scores_the_same_whichever_path_found_it(tmp_path: Path) -> None:
    """A memory only full text found still gets its cosine (the same score as where the nearest
    vectors include it), and a filtered search (LanceDB answers it) reports the scores of the
    plain one (the in-process copy answers that)."""
    query = "apple banana cherry date zeppelin"
    wide = _fruit_store(tmp_path / "wide", 80)
    narrow = _fruit_store(tmp_path / "narrow", 10)
    try:
        everyone = {h.memory: h.score for h in wide.search(query, user_id="u", limit=10).results}
        plain = {h.memory: h.score for h in narrow.search(query, user_id="u", limit=10).results}
        assert plain["zeppelin fig"] == pytest.approx(everyone["zeppelin fig"])
        filtered = {
            h.memory: h.score
            for h in narrow.search(query, user_id="u", limit=10, filters={"kind": "fruit"}).results
        }
        # The twenty near rows tie: the page may hold other ones of them, with the same score.
        assert "zeppelin fig" in filtered and {m: filtered[m] for m in filtered.keys() & plain.keys()} == (
            pytest.approx({m: plain[m] for m in filtered.keys() & plain.keys()})
        )
    finally:
        wide.close()
        narrow.close()
