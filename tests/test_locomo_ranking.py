"""The ranking choices the LoCoMo benchmark measured: context indexing, fusion, name and time cues."""

from __future__ import annotations

from datetime import datetime

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.ranking import NAME_BOOST, TimeCue, dense_query, fuse, time_cues, words
from tests.support.engine import FakeEmbedder, make_settings


def _hit(id_: str, *, distance: float | None = None, score: float | None = None, **row: object) -> dict:
    hit: dict = {"id": id_, **row}
    if distance is not None:
        hit["_distance"] = distance
    if score is not None:
        hit["_score"] = score
    return hit


def test_dense_side_is_min_max_normalized_over_its_candidates():
    dense = [_hit("a", distance=0.5), _hit("b", distance=0.6), _hit("c", distance=0.7)]
    ranked = fuse(dense, [], vector_weight=1.0)
    assert [c.row["id"] for c in ranked] == ["a", "b", "c"]
    assert [c.dense for c in ranked] == pytest.approx([1.0, 0.5, 0.0])
    assert ranked[0].cosine == pytest.approx(0.5)
    # A single candidate is the best there is, not the worst.
    assert fuse([_hit("x", distance=0.9)], [], vector_weight=1.0)[0].dense == 1.0


def test_fusion_weights_and_scores_stay_in_unit_range():
    dense = [_hit("a", distance=0.4), _hit("b", distance=0.6)]
    text = [_hit("b", score=8.0), _hit("c", score=2.0)]
    ranked = {c.row["id"]: c for c in fuse(dense, text, vector_weight=0.4, query="anything")}
    assert ranked["b"].sources == {"vector", "text"}
    assert ranked["b"].text == 1.0 and ranked["c"].text == 0.25
    assert ranked["b"].score > ranked["a"].score > ranked["c"].score
    assert all(0.0 <= c.score <= 1.0 for c in ranked.values())


def test_a_named_speaker_lifts_that_speakers_memories():
    dense = [
        _hit("a", distance=0.40, name="Bob"),
        _hit("b", distance=0.45, name="Caroline"),
        _hit("c", distance=0.80, name=None),
    ]
    plain = fuse(dense, [], vector_weight=1.0, query="what did she research?")
    assert [c.row["id"] for c in plain] == ["a", "b", "c"]
    named = fuse(dense, [], vector_weight=1.0, query="What did Caroline's group research?")
    assert [c.row["id"] for c in named] == ["b", "a", "c"]
    assert named[0].named and not named[1].named
    assert named[0].score == pytest.approx((0.875 + NAME_BOOST) / (1 + NAME_BOOST))


@pytest.mark.parametrize(
    ("query", "cues"),
    [
        ("When did Melanie go camping in June?", [TimeCue(None, 6, None)]),
        ("What did she show on October 13, 2023?", [TimeCue(2023, 10, 13)]),
        ("What news did Maria share on 16 June, 2023?", [TimeCue(2023, 6, 16)]),
        ("Which class did Maria start in December 2023?", [TimeCue(2023, 12, None)]),
        ("How often did she go to the beach in 2023?", [TimeCue(2023, None, None)]),
        ("What may she do next?", []),
        ("Did she march on May 5?", [TimeCue(None, 5, None)]),
    ],
)
def test_time_cues(query, cues):
    assert time_cues(query) == cues


def test_time_cue_matching_allows_the_week_after():
    june = TimeCue(None, 6, None)
    assert june.matches(datetime(2023, 6, 30)) and june.matches(datetime(2021, 6, 1))
    assert june.matches(datetime(2023, 7, 6)) and not june.matches(datetime(2023, 7, 9))
    assert not june.matches(datetime(2023, 5, 31))
    day = TimeCue(2023, 10, 13)
    assert day.matches(datetime(2023, 10, 13, 18, 55)) and not day.matches(datetime(2023, 10, 21))
    assert TimeCue(2023, 12, None).matches(datetime(2024, 1, 3))


def test_a_dated_query_lifts_memories_from_that_period():
    dense = [
        _hit("jan", distance=0.40, event_at="2023-01-10T10:00:00+00:00"),
        _hit("june", distance=0.42, event_at="2023-06-10T10:00:00+00:00"),
        _hit("undated", distance=0.60),
    ]
    ranked = fuse(dense, [], vector_weight=1.0, query="Where did we travel in June 2023?")
    assert ranked[0].row["id"] == "june" and ranked[0].dated
    assert not any(c.dated for c in ranked[1:])


def test_words_keep_any_script():
    assert words("Caroline's café, 東京!") == {"caroline", "s", "café", "東京"}


def test_context_indexing_finds_a_message_through_its_neighbours_words(memory: Memory):
    memory.add(
        [
            {"role": "user", "content": "Which city did you move to in 2019?", "name": "Ann"},
            {"role": "user", "content": "Lisbon, and I love it.", "name": "Bob"},
            {"role": "user", "content": "Nice, the light there is lovely.", "name": "Ann"},
        ],
        user_id="u",
    )
    memory.add("I had pasta for dinner.", user_id="u")
    hits = memory.search("Where does Bob live since he moved city?", user_id="u", limit=4).results
    assert hits[0].memory == "Lisbon, and I love it."
    assert hits[-1].memory == "I had pasta for dinner."


def test_full_text_index_weighs_the_own_words_and_reaches_two_messages_out(memory: Memory):
    texts = ["We adopted a puppy.", "What breed?", "A beagle named Max.", "Cute!", "He loves walks."]
    memory.add([{"role": "user", "content": t} for t in texts], user_id="u")
    memory.flush()
    rows = {r["memory"]: r for r in memory.storage.vectors.query("user_id = 'u'")}
    middle = rows["A beagle named Max."]
    assert middle["context"] == "What breed?\nCute!"
    # Own words twice, nearest neighbours, then two messages out.
    assert middle["search_text"] == (
        "A beagle named Max.\nA beagle named Max.\nWhat breed?\nCute!\nWe adopted a puppy.\nHe loves walks."
    )
    # An edit keeps the wider window of the row.
    memory.update(middle["id"], text="A beagle called Max.")
    memory.flush()  # the update is journaled: the table has it once moved
    row = memory.storage.vectors.get(middle["id"])
    assert row["search_text"].endswith("What breed?\nCute!\nWe adopted a puppy.\nHe loves walks.")
    assert row["search_text"].startswith("A beagle called Max.\nA beagle called Max.\n")
    single = memory.add("Just one message.", user_id="u").results[0]
    memory.flush()
    assert memory.storage.vectors.get(single.id)["search_text"] == "Just one message."


def test_dense_query_swaps_named_speakers_for_pronouns():
    names = frozenset({"caroline", "will"})
    assert dense_query("When did Caroline go to the group?", names) == "When did they go to the group?"
    assert dense_query("What is Caroline's dog called?", names) == "What is their dog called?"
    # Only capitalized words: a speaker called Will leaves the verb alone.
    assert dense_query("What will Will do?", names) == "What will they do?"
    assert dense_query("Where did Bob go?", names) == "Where did Bob go?"
    assert dense_query("Where did Caroline go?", frozenset()) == "Where did Caroline go?"


class RecordingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen.extend(texts)
        return super().embed(texts)


def test_search_embeds_the_query_without_known_speaker_names(tmp_path):
    emb = RecordingEmbedder()
    mem = Memory(make_settings(tmp_path / "data"), embedder=emb)
    try:
        said = {"role": "user", "content": "I researched adoption agencies.", "name": "Caroline"}
        mem.add([said], user_id="u")
        hits = mem.search("What did Caroline research?", user_id="u").results
        assert emb.seen[-1] == "What did they research?"
        assert hits and hits[0].name == "Caroline"
        # A speaker added later by this process is known at once.
        mem.add([{"role": "user", "content": "I ran a marathon.", "name": "Melanie"}], user_id="u")
        mem.search("What did Melanie run?", user_id="u")
        assert emb.seen[-1] == "What did they run?"
    finally:
        mem.close()
