"""A question about the present ranks the newer of two memories about the same thing first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mem0_mcp.engine.current import asks_present, current_first
from mem0_mcp.engine.memory import Memory
from tests.support.engine import FakeEmbedder, make_settings


@pytest.mark.parametrize(
    ("query", "present"),
    [
        ("Where does the user work now?", True),
        ("What is Ann currently reading?", True),
        ("Does she still live in Berlin?", True),
        ("Is he vegetarian anymore?", True),
        ("What are the latest news about the project?", True),
        ("What does Ann eat these days?", True),
        ("Where did the user work in 2019?", False),
        ("What is the name of Ann's dog?", False),
        ("Who knows about the snowstorm?", False),
    ],
)
def test_asks_present(query: str, present: bool) -> None:
    assert asks_present(query) is present


def test_current_first_orders_by_time_within_a_topic_only() -> None:
    def row(i: str, when: str) -> dict:
        return {"id": i, "event_at": None, "created_at": when}

    job = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    pet = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    rows = [row("old-job", "2024"), row("pet", "2023"), row("mid-job", "2025"), row("new-job", "2026")]
    vectors = {"old-job": job, "pet": pet, "mid-job": job, "new-job": job}
    out = current_first(rows, vectors, 0.2)
    assert [(r["id"], newer) for r, newer in out] == [
        ("new-job", None),
        ("mid-job", "new-job"),
        ("old-job", "new-job"),
        ("pet", None),
    ]
    # Rows without a vector stay where they are.
    out = current_first([row("a", "2024"), row("b", "2026")], {"a": job}, 0.2)
    assert [(r["id"], n) for r, n in out] == [("a", None), ("b", None)]


def test_a_present_question_ranks_the_new_job_first(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path / "data"), embedder=FakeEmbedder())
    try:
        old = mem.add("Works as a backend engineer at Stripe", user_id="u", timestamp="2024-03-01").results[0]
        new = mem.add("Works as a research engineer at Anthropic", user_id="u", timestamp="2026-01-05")
        new_id = new.results[0].id
        mem.add("Prefers pytest over unittest", user_id="u", timestamp="2026-02-01")
        hits = mem.search("Where does the user work as backend engineer now?", user_id="u").results
        assert [h.id for h in hits[:2]] == [new_id, old.id]
        assert hits[1].possibly_outdated_by == new_id and hits[0].possibly_outdated_by is None
        # A question about the past keeps the plain ranking, with nothing marked.
        past = mem.search("Where did the user work as backend engineer?", user_id="u").results
        assert past[0].id == old.id and all(h.possibly_outdated_by is None for h in past)
    finally:
        mem.close()
