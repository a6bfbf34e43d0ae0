"""A search's score means the same for every query, and a question about nothing remembered
returns nothing (the relevance gate, `search_threshold`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.ranking import fuse
from tests.support.engine import FakeEmbedder, make_settings


def test_scores_come_from_each_retrievers_own_evidence() -> None:
    dense = [{"id": "a", "_distance": 0.4}, {"id": "b", "_distance": 0.9}]
    text = [{"id": "b", "_score": 3.0, "_coverage": 0.7}, {"id": "c", "_score": 1.0, "_coverage": 0.2}]
    ranked = {c.row["id"]: c for c in fuse(dense, text, vector_weight=0.4, query="q")}
    assert ranked["a"].relevance == pytest.approx(0.6)  # its cosine
    assert ranked["b"].relevance == pytest.approx(0.7)  # its share of the query's words
    assert ranked["c"].relevance == pytest.approx(0.2)  # words only; cosine at most 0.1
    # The same hits among weaker ones keep their scores: nothing is relative to the candidates.
    more = fuse([*dense, {"id": "d", "_distance": 0.99}], text, vector_weight=0.4, query="q")
    assert {c.row["id"]: c.relevance for c in more}["a"] == pytest.approx(0.6)


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
    from mem0_mcp.embedding import BackgroundEmbedder
    from tests.support.server import seed_models

    data = tmp_path / "data"
    data.mkdir()
    seed_models(data)
    settings = make_settings(data, search_threshold=0.25)
    mem = Memory(settings, embedder=BackgroundEmbedder.from_settings(settings))
    try:
        for fact in ("Prefers pytest over unittest", "Has a greyhound called Pixel", "Lives in Lisbon"):
            mem.add(fact, user_id="u")
        assert mem.search("favourite pizza topping?", user_id="u").results == []
        assert mem.search("Which testing framework does the user like?", user_id="u").results[0].memory == (
            "Prefers pytest over unittest"
        )
    finally:
        mem.close()
