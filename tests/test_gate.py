"""Each scope's default relevance gate is measured there (engine/gate.py): the scores that
questions it cannot answer reach in it, not one number for a user's first facts and a year of
conversation alike."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from mem0_mcp.engine import gate as gate_module
from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.null_questions import NULL_QUESTIONS
from mem0_mcp.models import Scope
from tests.support.engine import FakeEmbedder, bundled_memory, make_settings

U = Scope(user_id="u")


def _memory(tmp_path: Path, **settings: object) -> Memory:
    settings = {"search_threshold": "auto", **settings}
    return Memory(make_settings(tmp_path / "data", **settings), embedder=FakeEmbedder())


def test_the_gate_is_a_quantile_of_what_the_null_questions_score_in_the_scope(tmp_path: Path) -> None:
    with closing(_memory(tmp_path, search_gate_quantile=0.8)) as mem:
        for fact in ("Prefers pytest over unittest", "Has a greyhound called Pixel", "Lives in Lisbon"):
            mem.add(fact, user_id="u")
        null = mem.gates.null_scores(U)
        assert null.size == 3 and len(null.scores) == len(NULL_QUESTIONS)
        # Each is the best score a search of that question gets there: the same code, the same score.
        for question, score in list(zip(NULL_QUESTIONS, null.scores, strict=True))[::11]:
            hits = mem.search(question, user_id="u", threshold=0).results
            assert score == pytest.approx(hits[0].score if hits else 0.0)
        assert mem.gates.gate(U) == pytest.approx(float(np.quantile(null.scores, 0.8)))


def test_a_search_under_the_scopes_gate_returns_nothing_and_one_over_it_its_results(tmp_path: Path) -> None:
    with closing(_memory(tmp_path)) as mem:
        mem.add("Prefers pytest over unittest", user_id="u")
        mem.add("Has a greyhound called Pixel", user_id="u")
        gate = mem.gates.gate(U)
        assert 0 < gate < 1
        under = "favourite pizza topping"
        assert mem.search(under, user_id="u", threshold=0).results[0].score < gate
        assert mem.search(under, user_id="u").results == []
        hits = mem.search("prefers pytest over unittest", user_id="u").results
        assert hits[0].memory == "Prefers pytest over unittest" and hits[0].score >= gate


def test_the_gate_is_measured_again_when_the_scope_grows_and_kept_when_it_barely_moves(
    tmp_path: Path,
) -> None:
    mem = _memory(tmp_path)

    def gate_after_a_search() -> object:  # a search asks for the gate after its retrieval
        mem.search("weather in town", user_id="u")
        return mem.gates.null_scores(U)

    with closing(mem):
        assert mem.gates.gate(U) == 0.0  # nothing stored: nothing to gate
        mem.add(
            [{"role": "user", "content": f"note {i} about the weather in town {i}"} for i in range(30)],
            user_id="u",
        )
        first = gate_after_a_search()
        assert first.size == 30 and first.scores
        mem.add("Prefers pytest over unittest", user_id="u")  # 31: within a tenth of 30
        assert gate_after_a_search() is first
        mem.add(
            [{"role": "user", "content": f"Drinks tea number {i} with lemon"} for i in range(10)], user_id="u"
        )
        again = gate_after_a_search()
        assert again is not first and again.size == 41


def test_without_the_in_process_copy_the_table_counts_the_scope_now_and_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closing(_memory(tmp_path, dense_cache_rows=0)) as mem:
        assert mem.storage.vectors.copy is None
        for fact in ("Prefers pytest over unittest", "Has a greyhound called Pixel", "Lives in Lisbon"):
            mem.add(fact, user_id="u")
        mem.search("pytest", user_id="u")
        first = mem.gates.null_scores(U)
        assert first.size == 3  # journaled adds moved to the table before it counts
        mem.add("Drinks dark roast coffee", user_id="u")
        mem.search("pytest", user_id="u")
        assert mem.gates.null_scores(U) is first  # counted again only SIZE_RECHECK_SECONDS later
        monkeypatch.setattr(gate_module, "SIZE_RECHECK_SECONDS", 0.0)
        mem.search("pytest", user_id="u")
        assert mem.gates.null_scores(U).size == 4


def test_searches_at_once_in_a_new_scope_share_one_measurement(tmp_path: Path) -> None:
    with closing(_memory(tmp_path)) as mem:
        for fact in ("Prefers pytest over unittest", "Has a greyhound called Pixel", "Lives in Lisbon"):
            mem.add(fact, user_id="u")
        mem.search("pytest", user_id="u", threshold=0)  # the copy takes the adds in

        def measure(_: int) -> int:
            return id(mem.gates.null_scores(U))

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert len(set(pool.map(measure, range(8)))) == 1


def test_each_scope_has_its_own_gate(tmp_path: Path) -> None:
    with closing(_memory(tmp_path)) as mem:
        mem.add("Prefers pytest over unittest", user_id="u")
        alone = mem.gates.null_scores(U).scores
        # Another user's memories that the null questions match well do not move u's gate.
        mem.add([{"role": "user", "content": q} for q in NULL_QUESTIONS[:40]], user_id="other")
        assert mem.gates.null_scores(Scope(user_id="other")).scores != alone
        assert mem.gates.null_scores(U).scores == alone


def test_a_fixed_setting_replaces_the_measured_gate(tmp_path: Path) -> None:
    with closing(_memory(tmp_path, search_threshold=0.3)) as mem:
        mem.add("Prefers pytest over unittest", user_id="u")
        assert mem.gates.gate(U) == 0.3
        assert mem.search("favourite pizza topping", user_id="u").results == []


@pytest.mark.slow
def test_a_small_store_answers_what_a_fixed_gate_for_large_ones_emptied(tmp_path: Path) -> None:
    with closing(bundled_memory(tmp_path / "data", search_threshold="auto")) as mem:
        for fact in (
            "Is a high school maths teacher",
            "Has two kids",
            "Quit teaching and now works as a freelance graphic designer",
        ):
            mem.add(fact, user_id="u")
        hits = mem.search("What does the user do for a living?", user_id="u").results
        # 0.27: under the 0.39 that one gate for all needs to keep 600-turn conversations quiet.
        assert hits and "graphic designer" in hits[0].memory and hits[0].score < 0.39
        assert mem.search("How do I centre a div in CSS?", user_id="u").results == []
        assert mem.search("Who won the 2018 football World Cup?", user_id="u").results == []
