"""The memory engine on real LanceDB + SQLite in tmp_path, with the deterministic fake embedder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mem0_mcp.engine.async_memory import AsyncMemory
from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import (
    EmbedderMismatchError,
    InvalidInputError,
    NotFoundError,
    ScopeRequiredError,
)
from mem0_mcp.models import Scope
from tests.support.engine import FakeEmbedder, make_settings

INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE memories; --",
    'a" OR "1"="1',
    "\\' OR 1=1 --",
    "alice') OR (user_id = 'bob",
    "%",
    "_",
]


def test_add_search_get_roundtrip(memory: Memory) -> None:
    res = memory.add("I love hiking in the mountains", user_id="alice", metadata={"topic": "hobby"})
    assert [e.event for e in res.results] == ["ADD"]
    assert res.inferred is False
    mid = res.results[0].id
    memory.add("My tax return is due in April", user_id="alice")
    hits = memory.search("hiking mountains", user_id="alice").results
    assert hits[0].id == mid
    assert 0.0 <= hits[0].score <= 1.0  # type: ignore[operator]
    assert hits[0].user_id == "alice"
    item = memory.get(mid)
    assert item.memory == "I love hiking in the mountains"
    assert item.metadata == {"topic": "hobby"}
    assert item.created_at.endswith("Z")


def test_exact_duplicate_is_none(memory: Memory) -> None:
    first = memory.add("I like green tea", user_id="u")
    again = memory.add("I like green tea", user_id="u")
    assert again.results[0].event == "NONE"
    assert again.results[0].id == first.results[0].id
    assert memory.get_all(user_id="u").total == 1
    # Another scope is another memory.
    assert memory.add("I like green tea", user_id="v").results[0].event == "ADD"


def test_duplicate_within_one_add(memory: Memory) -> None:
    res = memory.add(
        [{"role": "user", "content": "same words"}, {"role": "user", "content": "same words"}], user_id="u"
    )
    assert [e.event for e in res.results] == ["ADD", "NONE"]


def test_messages_one_memory_each_system_skipped(memory: Memory) -> None:
    res = memory.add(
        [
            {"role": "system", "content": "You are helpful"},
            {"role": "user", "content": "I moved to Berlin", "name": "Alice"},
            {"role": "assistant", "content": "How do you like Berlin?"},
        ],
        user_id="alice",
    )
    assert [e.memory for e in res.results] == ["I moved to Berlin", "How do you like Berlin?"]
    items = {i.memory: i for i in memory.get_all(user_id="alice").results}
    assert items["I moved to Berlin"].name == "Alice"
    assert items["I moved to Berlin"].role == "user"
    assert items["How do you like Berlin?"].role == "assistant"


def test_neighbour_context_finds_short_turn(memory: Memory) -> None:
    memory.add(
        [
            {"role": "user", "content": "Do you still play the cello?", "name": "Bob"},
            {"role": "user", "content": "Yes, every single day.", "name": "Alice"},
        ],
        user_id="alice",
    )
    memory.add("The weather is nice today", user_id="alice")
    hits = memory.search("cello", user_id="alice").results
    texts = [h.memory for h in hits]
    assert texts.index("Yes, every single day.") < texts.index("The weather is nice today")


def test_message_metadata_merges_over_add_metadata(memory: Memory) -> None:
    memory.add(
        [{"role": "user", "content": "turn one", "metadata": {"dia_id": "D1:1", "src": "msg"}}],
        user_id="u",
        metadata={"src": "add", "conv": "c1"},
    )
    item = memory.get_all(user_id="u").results[0]
    assert item.metadata == {"src": "msg", "conv": "c1", "dia_id": "D1:1"}


def test_timestamp_is_event_time_and_survives_restart(settings, fake_embedder: FakeEmbedder) -> None:
    mem = Memory(settings, embedder=fake_embedder)
    mem.add("We went to Paris", user_id="u", timestamp="2023-05-08T13:56:00+02:00")
    mem.add("We went to Rome", user_id="u", timestamp=1700000000)
    mem.close()
    mem = Memory(settings, embedder=fake_embedder)
    items = {i.memory: i for i in mem.get_all(user_id="u").results}
    assert items["We went to Paris"].event_at == "2023-05-08T11:56:00.000000Z"
    assert items["We went to Rome"].event_at == "2023-11-14T22:13:20.000000Z"
    before = mem.get_all(user_id="u", filters={"event_at": {"lt": "2023-06-01"}}).results
    assert [i.memory for i in before] == ["We went to Paris"]
    mem.close()


@pytest.mark.parametrize("bad", ["yesterday-ish", "2023-13-45", True, float("nan")])
def test_bad_timestamp_names_field_and_stores_nothing(memory: Memory, bad: object) -> None:
    with pytest.raises(InvalidInputError) as err:
        memory.add("text", user_id="u", timestamp=bad)  # type: ignore[arg-type]
    assert str(err.value).startswith("timestamp")
    assert memory.get_all(user_id="u").total == 0


def test_scope_required(memory: Memory) -> None:
    with pytest.raises(ScopeRequiredError):
        memory.add("x")
    with pytest.raises(ScopeRequiredError):
        memory.search("x")
    with pytest.raises(ScopeRequiredError):
        memory.get_all()
    with pytest.raises(ScopeRequiredError):
        memory.delete_all()
    with pytest.raises(ScopeRequiredError):
        memory.add("x", user_id="   ")


def test_scope_is_and_of_ids(memory: Memory) -> None:
    memory.add("alpha fact", user_id="u", agent_id="a1")
    memory.add("beta fact", user_id="u", agent_id="a2")
    memory.add("gamma fact", agent_id="a1")
    assert memory.get_all(user_id="u").total == 2
    assert [i.memory for i in memory.get_all(user_id="u", agent_id="a1").results] == ["alpha fact"]
    assert memory.get_all(agent_id="a1").total == 2
    assert [h.memory for h in memory.search("fact", user_id="u", agent_id="a2").results] == ["beta fact"]


def test_scope_isolation(memory: Memory) -> None:
    a = memory.add("alice secret plan", user_id="alice").results[0].id
    memory.add("bob secret plan", user_id="bob")
    alice = Scope(user_id="alice")
    bob = Scope(user_id="bob")
    assert [h.memory for h in memory.search("secret plan", user_id="bob").results] == ["bob secret plan"]
    assert [i.memory for i in memory.get_all(user_id="bob").results] == ["bob secret plan"]
    assert memory.get(a, scope=alice).memory == "alice secret plan"
    with pytest.raises(NotFoundError):
        memory.get(a, scope=bob)
    with pytest.raises(NotFoundError):
        memory.update(a, text="hijacked", scope=bob)
    with pytest.raises(NotFoundError):
        memory.delete(a, scope=bob)
    with pytest.raises(NotFoundError):
        memory.history(a, scope=bob)
    assert memory.get(a).memory == "alice secret plan"
    memory.delete_all(user_id="bob")
    assert memory.get_all(user_id="alice").total == 1


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_in_ids_match_only_themselves(memory: Memory, evil: str) -> None:
    memory.add("victim memory", user_id="victim", agent_id="agent", run_id="run")
    assert memory.search("victim memory", user_id=evil).results == []
    assert memory.search("victim memory", agent_id=evil).results == []
    assert memory.search("victim memory", run_id=evil).results == []
    assert memory.search("victim memory", user_id="victim", actor_id=evil).results == []
    assert memory.get_all(user_id=evil).total == 0
    assert memory.delete_all(user_id=evil).deleted == 0
    with pytest.raises(NotFoundError):
        memory.get(evil)
    # The evil string is an ordinary id for its own owner.
    mine = memory.add("evil's own memory", user_id=evil).results[0].id
    assert [i.id for i in memory.get_all(user_id=evil).results] == [mine]
    assert [h.id for h in memory.search("memory", user_id=evil).results] == [mine]
    assert memory.get_all(user_id="victim").total == 1


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_in_filter_values(memory: Memory, evil: str) -> None:
    memory.add("tagged", user_id="u", metadata={"tag": "safe"})
    memory.add("evil tagged", user_id="u", metadata={"tag": evil})
    assert [i.memory for i in memory.get_all(user_id="u", filters={"tag": evil}).results] == ["evil tagged"]
    assert memory.get_all(user_id="u", filters={"tag": {"in": [evil]}}).total == 1
    assert memory.get_all(user_id="u", filters={"tag": {"contains": evil}}).total == 1
    assert memory.get_all(user_id="u", filters={"name": evil}).total == 0


def test_injection_in_filter_key_is_refused(memory: Memory) -> None:
    memory.add("x", user_id="u")
    with pytest.raises(InvalidInputError, match=r"^filters\."):
        memory.get_all(user_id="u", filters={"tag') OR ('1'='1": "x"})


def test_update_keeps_history_and_reembeds(memory: Memory) -> None:
    mid = memory.add("I live in Paris", user_id="u").results[0].id
    item = memory.update(mid, text="I live in Lisbon", metadata={"city": "Lisbon"})
    assert item.memory == "I live in Lisbon"
    assert item.metadata == {"city": "Lisbon"}
    assert item.updated_at >= item.created_at
    assert memory.search("Lisbon", user_id="u").results[0].id == mid
    hist = memory.history(mid)
    assert [(h.event, h.old_memory, h.new_memory) for h in hist] == [
        ("ADD", None, "I live in Paris"),
        ("UPDATE", "I live in Paris", "I live in Lisbon"),
    ]


def test_delete_keeps_history(memory: Memory) -> None:
    mid = memory.add("temporary", user_id="u").results[0].id
    assert memory.delete(mid).deleted == 1
    with pytest.raises(NotFoundError):
        memory.get(mid)
    hist = memory.history(mid)
    assert [h.event for h in hist] == ["ADD", "DELETE"]
    assert hist[-1].is_deleted and hist[-1].user_id == "u"
    # Idempotent (#14): a second delete answers "already deleted"; another scope still cannot see it.
    again = memory.delete(mid)
    assert again.deleted == 0 and "already deleted" in again.message
    with pytest.raises(NotFoundError):
        memory.delete(mid, scope=Scope(user_id="someone-else"))


def test_delete_all_writes_history(memory: Memory) -> None:
    ids = [memory.add(f"fact {i}", user_id="u").results[0].id for i in range(3)]
    memory.add("other", user_id="w")
    assert memory.delete_all(user_id="u").deleted == 3
    assert memory.get_all(user_id="u").total == 0
    assert memory.get_all(user_id="w").total == 1
    assert all(memory.history(i)[-1].event == "DELETE" for i in ids)


def test_pagination_is_stable_and_complete(memory: Memory) -> None:
    for i in range(7):
        memory.add(f"memory number {i}", user_id="u")
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = memory.get_all(user_id="u", limit=3, offset=offset)
        assert page.total == 7
        seen += [i.id for i in page.results]
        offset = page.next_offset
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda m: m.add("", user_id="u"), "messages"),
        (lambda m: m.add("   \n", user_id="u"), "messages"),
        (lambda m: m.add([{"role": "user", "content": "  "}], user_id="u"), "messages[0].content"),
        (lambda m: m.add([{"role": "wizard", "content": "hi"}], user_id="u"), "messages[0]"),
        (lambda m: m.add([{"text": "hi"}], user_id="u"), "messages[0]"),
        (lambda m: m.add([42], user_id="u"), "messages[0]"),
        (lambda m: m.add([], user_id="u"), "messages"),
        (lambda m: m.add("x" * 70_000, user_id="u"), "messages"),
        (lambda m: m.add("ok", user_id="u", metadata={"f": object()}), "metadata"),
        (lambda m: m.add("ok", user_id="u", metadata={"f": float("inf")}), "metadata"),
        (lambda m: m.add("ok", user_id="u", metadata=[1, 2]), "metadata"),
        (lambda m: m.add("ok", user_id=123), "user_id"),
        (lambda m: m.add("ok", user_id="u", memory_type="weird"), "memory_type"),
        (lambda m: m.add([{"role": "user", "content": "a", "name": ""}], user_id="u"), "messages[0].name"),
        (lambda m: m.search("", user_id="u"), "query"),
        (lambda m: m.search("x", user_id="u", limit=0), "limit"),
        (lambda m: m.search("x", user_id="u", limit=1000), "limit"),
        (lambda m: m.search("x", user_id="u", limit="5"), "limit"),
        (lambda m: m.search("x", user_id="u", threshold=1.5), "threshold"),
        (lambda m: m.get_all(user_id="u", offset=-1), "offset"),
        (lambda m: m.get(""), "memory_id"),
        (lambda m: m.update("some-id"), "text"),
        (lambda m: m.search("x", user_id="u", filters={"k": {"like": "x"}}), "filters.k.like"),
        (lambda m: m.search("x", user_id="u", filters={"k": {"in": "notalist"}}), "filters.k.in"),
        (lambda m: m.search("x", user_id="u", filters={"AND": "x"}), "filters.AND"),
        (
            lambda m: m.search("x", user_id="u", filters={"created_at": {"gt": "soon"}}),
            "filters.created_at.gt",
        ),
    ],
)
def test_bad_input_names_the_field_and_loses_nothing(memory: Memory, call, field: str) -> None:
    keep = memory.add("precious memory", user_id="u").results[0].id
    with pytest.raises(InvalidInputError) as err:
        call(memory)
    assert str(err.value).startswith(field), str(err.value)
    assert memory.get(keep).memory == "precious memory"
    assert memory.get_all(user_id="u").total == 1


def test_unknown_id(memory: Memory) -> None:
    with pytest.raises(NotFoundError, match="memory_id"):
        memory.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFoundError):
        memory.update("nope", text="x")
    with pytest.raises(NotFoundError):
        memory.history("nope")


def test_restart_persistence(settings, fake_embedder: FakeEmbedder) -> None:
    mem = Memory(settings, embedder=fake_embedder)
    mid = mem.add("persistent fact about boats", user_id="u").results[0].id
    mem.update(mid, text="persistent fact about sailing boats")
    mem.close()
    mem2 = Memory(settings, embedder=fake_embedder)
    assert mem2.get(mid).memory == "persistent fact about sailing boats"
    assert mem2.search("sailing", user_id="u").results[0].id == mid
    assert len(mem2.history(mid)) == 2
    mem2.close()


def test_changed_embedder_is_refused(settings) -> None:
    mem = Memory(settings, embedder=FakeEmbedder(dimension=64, name="model-a"))
    mem.add("hello", user_id="u")
    mem.close()
    with pytest.raises(EmbedderMismatchError, match="reindex"):
        Memory(settings, embedder=FakeEmbedder(dimension=64, name="model-b"))
    same_name_other_dim = Memory(settings, embedder=FakeEmbedder(dimension=32, name="model-a"))
    with pytest.raises(EmbedderMismatchError, match="dimension"):
        same_name_other_dim.search("hello", user_id="u")
    with pytest.raises(EmbedderMismatchError):
        same_name_other_dim.add("more", user_id="u")
    same_name_other_dim.close()
    meta = json.loads((settings.data_dir / "store.json").read_text())
    assert meta == {"embedder_model": "model-a", "dimension": 64}


def test_threshold_and_limit(memory: Memory) -> None:
    for i in range(15):
        memory.add(f"note {i} about gardening", user_id="u")
    assert len(memory.search("gardening", user_id="u", limit=5).results) == 5
    strict = memory.search("gardening", user_id="u", threshold=0.99).results
    assert all(h.score is not None and h.score >= 0.99 for h in strict)


def test_concurrent_writers_lose_nothing(settings, fake_embedder: FakeEmbedder) -> None:
    mem = Memory(settings, embedder=fake_embedder)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                mem.add(f"thread {n} fact {i}", user_id="u")
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert mem.get_all(user_id="u", limit=100).total == 40
    mem.close()


def test_two_engines_one_data_dir(settings, fake_embedder: FakeEmbedder) -> None:
    """Two engines (as two server processes would) see each other's writes."""
    one = Memory(settings, embedder=fake_embedder)
    two = Memory(settings, embedder=fake_embedder)
    a = one.add("written by one", user_id="u").results[0].id
    b = two.add("written by two", user_id="u").results[0].id
    assert {i.id for i in one.get_all(user_id="u").results} == {a, b}
    assert two.add("written by one", user_id="u").results[0].event == "NONE"
    one.close()
    two.close()


def test_reset(memory: Memory, settings) -> None:
    mid = memory.add("forget me", user_id="u").results[0].id
    memory.reset()
    assert memory.get_all(user_id="u").total == 0
    with pytest.raises(NotFoundError):
        memory.history(mid)
    assert not (Path(settings.data_dir) / "store.json").exists()
    memory.add("fresh start", user_id="u")
    assert memory.get_all(user_id="u").total == 1


def test_optimize_keeps_results(settings, fake_embedder: FakeEmbedder) -> None:
    mem = Memory(make_settings(settings.data_dir, optimize_every=5), embedder=fake_embedder)
    for i in range(12):
        mem.add(f"item {i} concerning kayaks", user_id="u")
    mem.optimize()
    assert mem.get_all(user_id="u", limit=50).total == 12
    assert len(mem.search("kayaks", user_id="u", limit=20).results) == 12
    mem.close()


def test_infer_without_llm_falls_back_with_reason(memory: Memory) -> None:
    res = memory.add("I prefer window seats", user_id="u", infer=True)
    assert res.inferred is False
    assert res.reason and "verbatim" in res.reason
    assert res.results[0].event == "ADD"
    # Near-duplicate detection by embedding when inference was asked for.
    again = memory.add("i prefer WINDOW seats!", user_id="u", infer=True)
    assert again.results[0].event == "NONE"


def test_image_blocks_skipped_with_warning(memory: Memory) -> None:
    res = memory.add(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look at my new bike"},
                    {"type": "image_url", "image_url": {"url": "https://example.invalid/bike.png"}},
                ],
            }
        ],
        user_id="u",
    )
    assert res.results[0].memory == "Look at my new bike"
    assert any("image" in w for w in res.warnings)


async def test_async_facade(memory: Memory) -> None:
    amem = AsyncMemory(memory)
    res = await amem.add("async fact about owls", user_id="u")
    hits = await amem.search("owls", user_id="u")
    assert hits.results[0].id == res.results[0].id
    with pytest.raises(NotFoundError):
        await amem.get("missing")


def test_dense_copy_ranks_as_lancedb_does(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    cached = Memory(make_settings(tmp_path / "a"), embedder=emb)
    plain = Memory(make_settings(tmp_path / "b", dense_cache_rows=0), embedder=emb)
    for mem in (cached, plain):
        for i in range(40):
            mem.add(f"note {i} on topic {i % 7} with word{i % 5}", user_id="u" if i % 3 else "w")
    for query in ("topic 3", "word2 note", "note 11"):
        a = {h.memory: h.score or 0.0 for h in cached.search(query, user_id="u", limit=40).results}
        b = {h.memory: h.score or 0.0 for h in plain.search(query, user_id="u", limit=40).results}
        assert a.keys() == b.keys()
        # Without the copy a score has no share of the query's words (LanceDB gives BM25 without
        # the scope's ceiling): the cosine alone, never more than with it.
        assert all(b[m] <= a[m] + 1e-6 for m in a) and any(b[m] < a[m] for m in a)
    cached.close()
    plain.close()


def test_search_follows_writes_of_this_and_other_engines(settings, fake_embedder: FakeEmbedder) -> None:
    one = Memory(settings, embedder=fake_embedder)
    two = Memory(settings, embedder=fake_embedder)
    keep = one.add("zebra crossing near home", user_id="u").results[0].id
    assert [h.id for h in one.search("zebra", user_id="u").results] == [keep]  # copy loaded
    other = two.add("zebra stripes pattern", user_id="u").results[0].id
    assert {h.id for h in one.search("zebra", user_id="u").results} == {keep, other}
    two.delete(other)
    assert [h.id for h in one.search("zebra", user_id="u").results] == [keep]
    one.update(keep, text="giraffe neck length")
    assert one.search("giraffe", user_id="u").results[0].memory == "giraffe neck length"
    mine = one.add("zebra again, mine", user_id="u").results[0].id
    assert mine in {h.id for h in one.search("zebra", user_id="u").results}
    one.delete(mine)
    assert mine not in {h.id for h in one.search("zebra", user_id="u").results}
    one.delete_all(user_id="u")
    assert one.search("zebra", user_id="u").results == []
    one.close()
    two.close()
