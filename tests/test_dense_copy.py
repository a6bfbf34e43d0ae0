"""How the in-process copy stays current: compaction keeps it, other processes' appends are read
alone, any other foreign write reloads it (in the background past a size, LanceDB answering)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import FakeEmbedder, make_settings

from mem0_mcp.engine.memory import Memory
from mem0_mcp.stores import vectors


def test_compaction_keeps_the_copy(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder())
    for i in range(5):
        mem.add([{"role": "user", "content": f"fact {i}.{j} about otters"} for j in range(3)], user_id="u")
    mem.search("otters", user_id="u")
    copy = mem.storage.vectors.copy
    assert copy is not None and copy.version == int(mem.storage.vectors.table.version)
    mem.optimize()
    assert mem.storage.vectors.copy is copy  # not reloaded...
    assert copy.version == int(mem.storage.vectors.table.version)  # ...and current
    assert len(mem.search("otters", user_id="u", limit=100).results) == 15
    mem.close()


def test_a_large_stale_copy_reloads_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "SYNC_RELOAD_ROWS", 5)
    settings = make_settings(tmp_path / "d")
    one = Memory(settings, embedder=FakeEmbedder())
    two = Memory(settings, embedder=FakeEmbedder())
    one.add([{"role": "user", "content": f"heron sighting number {i}"} for i in range(10)], user_id="u")
    assert one.storage.vectors.wait_for_copy(30)
    other = two.add("heron nest by the river", user_id="u").results[0].id
    two.flush()
    # An update is more than an append: the copy is stale and large, so this search is answered
    # by LanceDB while it reloads, and sees the change.
    two.update(other, text="heron nest by the river bend")
    assert other in {h.id for h in one.search("heron nest river bend", user_id="u").results}
    assert one.storage.vectors.wait_for_copy(30)
    copy = one.storage.vectors.copy
    assert copy is not None and copy.version == int(one.storage.vectors.table.version)
    hit = next(h for h in one.search("heron nest river bend", user_id="u").results if h.id == other)
    assert hit.memory == "heron nest by the river bend"
    one.close()
    two.close()


def live_rows(mem: Memory) -> list[str]:
    """Ids the copy holds as live, each as often as it holds it."""
    copy = mem.storage.vectors.copy
    assert copy is not None
    return copy.live_ids()


def test_other_processes_appends_are_read_alone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d")
    one = Memory(settings, embedder=FakeEmbedder())
    two = Memory(settings, embedder=FakeEmbedder())
    one.add([{"role": "user", "content": f"otter fact {i}"} for i in range(5)], user_id="u")
    one.search("otter", user_id="u")
    copy = one.storage.vectors.copy
    for round_ in range(3):
        # Appends by the other engine, then by this one (its own delta), interleaved.
        two.add(f"beaver fact {round_}", user_id="u")
        two.flush()
        found = {h.memory for h in one.search("beaver", user_id="u", limit=20).results}
        assert f"beaver fact {round_}" in found
        one.add(f"own otter fact {round_}", user_id="u")
        one.flush()
    assert one.storage.vectors.copy is copy  # never reloaded
    ids = live_rows(one)
    assert len(ids) == len(set(ids)) == one.storage.vectors.count() == 11  # nothing twice, nothing missing
    # The other engine's own copy followed this one's appends the same way.
    two.search("otter", user_id="u")
    assert sorted(live_rows(two)) == sorted(ids)
    one.close()
    two.close()


@pytest.mark.parametrize("change", ["delete", "update", "compact"])
def test_any_other_foreign_write_reloads_the_copy(tmp_path: Path, change: str) -> None:
    settings = make_settings(tmp_path / "d")
    one = Memory(settings, embedder=FakeEmbedder())
    two = Memory(settings, embedder=FakeEmbedder())
    ids = [
        r.id
        for r in one.add(
            [{"role": "user", "content": f"kiwi fact {i}"} for i in range(4)], user_id="u"
        ).results
    ]
    one.search("kiwi", user_id="u")
    copy = one.storage.vectors.copy
    if change == "delete":
        two.delete(ids[0])
        two.flush()  # journaled: written to the table by two, not by one's move
    elif change == "update":
        two.update(ids[0], text="kiwi fact changed")
        two.flush()
    else:
        two.add("kiwi fact extra", user_id="u")
        two.optimize()
    hits = {h.id: h.memory for h in one.search("kiwi", user_id="u", limit=20).results}
    if change != "compact":  # compaction may leave the copy's fragments as they were
        assert one.storage.vectors.copy is not copy
    if change == "delete":
        assert ids[0] not in hits and len(hits) == 3
    elif change == "update":
        assert hits[ids[0]] == "kiwi fact changed"
    else:
        assert len(hits) == 5
    assert len(live_rows(one)) == one.storage.vectors.count()
    one.close()
    two.close()


def test_the_copy_reads_succession_columns_only_when_the_scope_holds_a_superseded_row(
    tmp_path: Path,
) -> None:
    mem = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder())
    old = mem.add("lives in Lisbon", user_id="u").results[0].id
    mem.add("lives in a flat in Lisbon", user_id="other")
    store = mem.storage.vectors
    scope = {"user_id": "u", "agent_id": None, "run_id": None}
    vector = FakeEmbedder().embed(["lives in Lisbon"])[0]
    light, succession = ("id", "name"), ("superseded_at", "superseded_by")

    def read() -> list[list[dict]]:
        mem.flush()  # into the table, which the copy follows
        assert store.wait_for_copy(30)
        dense = store.dense_search(
            vector, 5, scope, include_superseded=True, columns=light, succession=succession
        )
        text = store.cached_text_search(
            "Lisbon", 5, scope, include_superseded=True, columns=light, succession=succession
        )
        assert dense is not None and text is not None
        return [dense, text]

    before = read()
    assert all(hits for hits in before)
    assert all(not set(succession) & set(hit) for hits in before for hit in hits)
    new = mem.add("moved to Porto", user_id="u", supersedes=[old]).results[0].id
    for hits in read():
        by_id = {h["id"]: h for h in hits}
        assert by_id[old]["superseded_by"] == new and by_id[old]["superseded_at"]
        assert all(h["superseded_at"] is None for h in hits if h["id"] != old)
    assert new in {h["id"] for h in read()[0]}
    mem.close()


def test_searches_between_appends_and_changes_see_exactly_the_live_rows_of_their_scope(
    tmp_path: Path,
) -> None:
    """The copy keeps a scope's mask across appends (reading the appended rows alone) and builds
    it again after a change of a row it holds: each read between adds, staged changes, moves,
    supersedes and deletes lists what the engine holds, no more, no less."""
    mem = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder())
    rng = random.Random(11)
    owner: dict[str, str] = {}  # live id -> user
    superseded: set[str] = set()
    vector = FakeEmbedder().embed(["anything"])[0]
    for user in ("u1", "u2"):
        owner[mem.add(f"{user} first fact", user_id=user).results[0].id] = user

    def check(step: int, op: str) -> None:
        ticket = mem.storage.copy_with_journal()
        if ticket is None:  # a supersede moves the journal; the first read loads the copy
            mem.search("anything", user_id="u1")
            ticket = mem.storage.copy_with_journal()
        assert ticket is not None
        # One scope read after every step keeps its mask from step to step; now and then all.
        views = [(u, i) for u in ("u1", "u2") for i in (False, True)] if step % 10 == 9 else [("u1", False)]
        for user, include in views:
            scope = {"user_id": user, "agent_id": None, "run_id": None}
            got = {h["id"] for h in ticket.copy.search(vector, 10_000, scope, include, exact=True)}
            want = {i for i, u in owner.items() if u == user and (include or i not in superseded)}
            assert got == want, (step, op, user, include)

    for step in range(120):
        user = rng.choice(("u1", "u2"))
        mine = sorted(i for i, u in owner.items() if u == user and i not in superseded)
        op = rng.choice(("add", "add", "add", "update", "delete", "supersede", "flush"))
        if op == "add" or (op != "flush" and not mine):
            texts = [f"{user} fact {step}.{j}" for j in range(rng.randint(1, 3))]
            for event in mem.add([{"role": "user", "content": t} for t in texts], user_id=user).results:
                owner[event.id] = user
        elif op == "update":
            mem.update(rng.choice(mine), text=f"{user} fact changed at {step}")
        elif op == "delete":
            gone = rng.choice(mine)
            mem.delete(gone)
            del owner[gone]
        elif op == "supersede":
            old = rng.choice(mine)
            new = mem.add(f"{user} fact replacing at {step}", user_id=user, supersedes=[old]).results[0]
            owner[new.id] = user
            superseded.add(old)
        else:
            mem.flush()
        check(step, op)
    mem.close()
