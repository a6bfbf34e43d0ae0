"""The LoCoMo scorer and data cleaning on hand-made conversations with known answers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from benchmarks.locomo_baselines import BM25, rrf, tokenize
from benchmarks.locomo_data import (
    clean_evidence,
    load,
    normalize_dia_id,
    parse_conversation,
    parse_session_date,
)
from benchmarks.locomo_scorer import question_scores, score, text_token_counter


def _sample(qa: list[dict]) -> dict:
    return {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a cat."},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "Nice!", "blip_caption": "a photo of a cat"},
                {"speaker": "Ann", "dia_id": "D1:3", "text": "Her name is Luna."},
            ],
            "session_2_date_time": "10:37 am on 27 June, 2023",
            "session_2": [
                {"speaker": "Bob", "dia_id": "D2:1", "text": "I ran a marathon."},
                {"speaker": "Ann", "dia_id": "D2:2", "text": "Wow."},
            ],
            # A date with no session: ignored.
            "session_3_date_time": "9:00 am on 1 July, 2023",
        },
        "qa": qa,
    }


QA = [
    {"question": "What is the cat called?", "evidence": ["D1:1", "D1:3"], "category": 4},
    {"question": "When did Bob run?", "evidence": ["D2:1"], "category": 2},
    {"question": "Both?", "evidence": ["D1:1; D2:1"], "category": 1},
    {"question": "Gone", "evidence": ["D9:9", "D"], "category": 3},
    {"question": "Unanswerable", "evidence": ["D1:1"], "category": 5},
]


def test_parse_conversation_turns_sessions_and_dates():
    conv = parse_conversation(_sample(QA))
    assert [s.number for s in conv.sessions] == [1, 2]
    turns = list(conv.turns())
    assert [t.dia_id for t in turns] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2"]
    assert turns[0].natural_text == 'Ann said, "I adopted a cat."'
    assert turns[1].natural_text == 'Bob said, "Nice!" and shared a photo of a cat'
    assert turns[3].date == datetime(2023, 6, 27, 10, 37, tzinfo=UTC)
    # Category 5 is not scored; an evidence list naming no turn is skipped and counted.
    assert [q.qa_index for q in conv.questions] == [0, 1, 2]
    assert conv.skipped == [3]
    assert conv.questions[2].evidence == ("D1:1", "D2:1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("12:09 am on 13 September, 2023", datetime(2023, 9, 13, 0, 9, tzinfo=UTC)),
        ("12:28 pm on 8 November,2023", datetime(2023, 11, 8, 12, 28, tzinfo=UTC)),
    ],
)
def test_parse_session_date(text, expected):
    assert parse_session_date(text) == expected


def test_parse_session_date_rejects_garbage():
    with pytest.raises(ValueError, match="session date"):
        parse_session_date("sometime last spring")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("D:11:26", "D11:26"), ("D30:05", "D30:5"), ("D4:36", "D4:36"), ("D", None), ("", None), ("X1:2", None)],
)
def test_normalize_dia_id(raw, expected):
    assert normalize_dia_id(raw) == expected


def test_clean_evidence_splits_repairs_and_drops():
    valid = {"D8:6", "D9:17", "D9:1", "D4:4", "D4:6", "D11:26", "D30:5"}
    assert clean_evidence(["D8:6; D9:17"], valid) == ["D8:6", "D9:17"]
    assert clean_evidence(["D9:1 D4:4 D4:6"], valid) == ["D9:1", "D4:4", "D4:6"]
    assert clean_evidence(["D:11:26", "D30:05", "D4:4,D8:6"], valid) == ["D11:26", "D30:5", "D4:4", "D8:6"]
    # Ids naming no turn ("D", a turn past the session's end) go; repeats count once.
    assert clean_evidence(["D", "D4:36", "D9:1", "D9:01"], valid) == ["D9:1"]
    assert clean_evidence(["D4:36"], valid) == []


def test_question_scores_known_values():
    s = question_scores({"a", "b"}, ["x", "a", "y", "b"], 2)
    ideal = 1 + 1 / math.log2(3)
    assert s == {"frac": 0.5, "all": 0.0, "any": 1.0, "ndcg": pytest.approx((1 / math.log2(3)) / ideal)}
    s = question_scores({"a", "b"}, ["b", "a", "x"], 5)
    assert s["frac"] == 1.0 and s["all"] == 1.0 and s["ndcg"] == pytest.approx(1.0)
    s = question_scores({"a"}, ["x", "y"], 5)
    assert s == {"frac": 0.0, "all": 0.0, "any": 0.0, "ndcg": 0.0}
    # A repeated id does not earn gain twice; None (a hit with no dia_id) is just a miss.
    assert question_scores({"a"}, [None, "a", "a"], 3)["ndcg"] == pytest.approx(1 / math.log2(3))
    with pytest.raises(ValueError):
        question_scores(set(), ["a"], 5)


def test_score_per_category_and_overall(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps([_sample(QA)]))
    convs = load(path)
    rankings = {"conv-x": {"0": ["D1:1", "D2:2", "D1:2", "D2:1", "D1:3"], "1": ["D2:1"], "2": ["D2:1"]}}
    res = score(convs, rankings, ks=(1, 5), context_tokens=text_token_counter(convs, rankings))
    assert res["questions"] == 3 and res["skipped"] == 1
    cat4, cat2, cat1 = (res["by_category"][c] for c in ("4", "2", "1"))
    assert cat4["frac@1"] == 50.0 and cat4["frac@5"] == 100.0 and cat4["all@1"] == 0.0
    assert cat2["frac@1"] == 100.0 and cat2["ndcg@1"] == 100.0
    assert cat1["frac@1"] == 50.0 and cat1["any@1"] == 100.0 and cat1["all@5"] == 0.0
    assert res["overall"]["frac@1"] == pytest.approx((50 + 100 + 50) / 3)
    assert res["overall"]["frac@5"] == pytest.approx((100 + 100 + 50) / 3)
    assert "3" not in res["by_category"]
    # Tokens at k=1: the first result's natural text over 4, averaged over the 3 questions.
    first = ['Ann said, "I adopted a cat."', 'Bob said, "I ran a marathon."', 'Bob said, "I ran a marathon."']
    assert res["avg_context_tokens"]["1"] == pytest.approx(sum(len(t) / 4 for t in first) / 3)


def test_missing_ranking_scores_zero(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps([_sample(QA)]))
    res = score(load(path), {})
    assert res["overall"]["frac@20"] == 0.0 and res["questions"] == 3


def test_bm25_and_rrf_baselines():
    texts = ["the cat sat", "a dog ran far", "cat and dog play outside", "nothing here", "rain", "sun"]
    docs = [tokenize(t) for t in texts]
    bm = BM25(docs)
    scores = bm.scores(tokenize("Cat?"))
    # The shorter of the two cat documents wins; documents without the term score nothing.
    assert scores[0] > scores[2] > 0 and scores[1] == scores[3] == 0
    import numpy as np

    fused = rrf([np.array([0, 1, 2]), np.array([2, 0, 1])])
    assert list(fused) == [0, 2, 1]
