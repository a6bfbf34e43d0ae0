"""The shorter write paths of update and delete (issue #16, load): they read the row before the
locks, move the journal only for their own id, and trust the early read only while the row is
unchanged; readers waiting for the journal share one move. Real stores in tmp_path."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import NotFoundError
from tests.test_write_behind import frozen, journal_size


def test_add_update_delete_of_one_id_while_the_journal_is_unmoved(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    stored = mem.add("the boat is moored at pier four", user_id="u").results[0].id
    mem.flush()
    other = mem.add("the car is parked on level two", user_id="u").results[0].id
    fresh = mem.add("the bike is locked at the station", user_id="u").results[0].id
    assert journal_size(mem) == 2
    # A row already in the table is changed in the journal, without moving the others' adds.
    assert mem.update(stored, text="the boat is moored at pier five").memory == (
        "the boat is moored at pier five"
    )
    assert journal_size(mem) == 3
    # A journaled add is changed in its entry, then deleted (its entry dropped: never moved).
    assert mem.update(fresh, text="the bike is locked at home", metadata={"k": 1}).metadata == {"k": 1}
    assert journal_size(mem) == 3
    mem.delete(fresh)
    assert journal_size(mem) == 2
    mem.delete(stored)
    assert journal_size(mem) == 2
    with pytest.raises(NotFoundError):
        mem.get(fresh)
    with pytest.raises(NotFoundError):
        mem.get(stored)
    assert [e.event for e in mem.history(fresh)] == ["ADD", "UPDATE", "DELETE"]
    assert [e.new_memory for e in mem.history(stored)][:2] == [
        "the boat is moored at pier four",
        "the boat is moored at pier five",
    ]
    assert [m.id for m in mem.get_all(user_id="u").results] == [other]
    mem.close()


def test_an_early_read_changed_by_another_process_is_read_again(tmp_path: Path) -> None:
    one = frozen(tmp_path / "d")
    key = one.add("the meeting is on monday", user_id="u").results[0].id
    one.flush()
    seen = one.storage.peek_row(key, None)
    assert seen is not None and seen["memory"] == "the meeting is on monday"
    two = frozen(tmp_path / "d")  # another process's engine, between the read and the locks
    two.update(key, text="the meeting is on tuesday")
    with one.storage.writing():
        row = one.storage.row_for_write(key, None, seen)
    assert row["memory"] == "the meeting is on tuesday"
    # And through the engine: the history records the text it replaced, not the early read.
    one.update(key, text="the meeting is on friday")
    assert [e.old_memory for e in one.history(key)][1:] == [
        "the meeting is on monday",
        "the meeting is on tuesday",
    ]
    two.close()
    one.close()


def test_readers_waiting_for_the_journal_all_see_it_moved(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    ids = [mem.add(f"note number {i} about ferries", user_id="u").results[0].id for i in range(20)]
    found: list[set[str]] = []

    def read() -> None:
        found.append({m.id for m in mem.get_all(user_id="u", limit=100).results})

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [set(ids)] * 8
    assert journal_size(mem) == 0 and mem.storage.vectors.count() == 20
    mem.close()


# ---------------------------------------------------------------- reads beside the journal
def moved_then_journaled(
    tmp_path: Path, moved: int, journaled: int, user: str = "u"
) -> tuple[Memory, list[str]]:
    """A frozen engine with ``moved`` memories in the table and ``journaled`` more in the journal
    (staged in the in-process copy), oldest first."""
    mem = frozen(tmp_path / "d")
    ids = [mem.add(f"ferry note {i} about harbours", user_id=user).results[0].id for i in range(moved)]
    mem.flush()
    assert mem.storage.vectors.wait_for_copy(30)
    ids += [
        mem.add(f"ferry note {moved + i} about harbours", user_id=user).results[0].id
        for i in range(journaled)
    ]
    assert journal_size(mem) == journaled
    return mem, ids


def test_plain_search_list_and_get_see_journaled_adds_without_moving_them(tmp_path: Path) -> None:
    mem, ids = moved_then_journaled(tmp_path, 3, 4)
    table_version = mem.storage.vectors.table.version
    hits = mem.search("ferry note 5 harbours", user_id="u", limit=10).results
    assert ids[5] in {h.id for h in hits} and len({h.id for h in hits}) == len(hits)
    page = mem.get_all(user_id="u", limit=100)
    listed = [m.id for m in page.results]
    # Newest first, ties by id: the same order as a listing read from the table.
    assert listed == sorted(ids, key=lambda i: (mem.get(i).created_at, i), reverse=True)
    assert page.total == 7
    assert mem.get(ids[6]).memory == "ferry note 6 about harbours"
    # Nothing was moved: the reads did not wait for the write lock.
    assert journal_size(mem) == 4 and mem.storage.vectors.table.version == table_version
    mem.flush()
    assert [m.id for m in mem.get_all(user_id="u", limit=100).results] == listed
    mem.close()


def test_journaled_rows_keep_scope_filters_and_actor(tmp_path: Path) -> None:
    mem, ids = moved_then_journaled(tmp_path, 2, 2)
    other = mem.add("ferry note from someone else about harbours", user_id="v").results[0].id
    tagged = mem.add("ferry note tagged about harbours", user_id="u", metadata={"kind": "tag"}).results[0].id
    by_actor = mem.add("ferry note by ann about harbours", user_id="u", actor_id="ann").results[0].id
    assert journal_size(mem) == 5
    seen_u = {m.id for m in mem.get_all(user_id="u", limit=100).results}
    assert other not in seen_u and {tagged, by_actor, *ids} == seen_u
    assert {h.id for h in mem.search("ferry harbours", user_id="u", limit=20).results} <= seen_u
    assert [h.id for h in mem.search("ferry harbours", user_id="v").results] == [other]
    # Filters and actors read the table (after moving the journal), by the same SQL predicate.
    assert [m.id for m in mem.get_all(user_id="u", filters={"kind": "tag"}).results] == [tagged]
    assert [m.id for m in mem.get_all(user_id="u", actor_id="ann").results] == [by_actor]
    assert [h.id for h in mem.search("ferry", user_id="u", filters={"kind": "tag"}).results] == [tagged]
    mem.close()


def test_journaled_rows_changed_before_they_moved_do_not_come_back(tmp_path: Path) -> None:
    mem, ids = moved_then_journaled(tmp_path, 1, 3)
    mem.update(ids[1], text="ferry note rewritten about piers")
    mem.delete(ids[2])
    later = mem.add("ferry note superseding about harbours", user_id="u", supersedes=[ids[3]]).results[0].id
    mem.add("ferry note after the changes", user_id="u")  # journaled again: reads use the copy
    assert journal_size(mem) == 1
    listed = {m.id: m.memory for m in mem.get_all(user_id="u", limit=100).results}
    assert ids[2] not in listed and ids[3] not in listed and later in listed
    assert listed[ids[1]] == "ferry note rewritten about piers"
    hits = [h.id for h in mem.search("ferry note", user_id="u", limit=20).results]
    assert len(hits) == len(set(hits)) and ids[2] not in hits and ids[3] not in hits
    everything = {m.id for m in mem.get_all(user_id="u", limit=100, include_superseded=True).results}
    assert ids[3] in everything and ids[2] not in everything
    with pytest.raises(NotFoundError):
        mem.get(ids[2])
    mem.close()


def test_cursor_pages_through_moved_and_journaled_rows(tmp_path: Path) -> None:
    mem, ids = moved_then_journaled(tmp_path, 5, 5)
    first = mem.get_all(user_id="u", limit=4)
    assert first.next_after is not None
    mem.add("ferry note added between pages", user_id="u")  # newer: belongs before the cursor
    mem.delete(first.results[0].id)
    seen = [m.id for m in first.results]
    after = first.next_after
    while after is not None:
        page = mem.get_all(user_id="u", limit=4, after=after)
        seen += [m.id for m in page.results]
        after = page.next_after
    assert len(seen) == len(set(seen)) == 10 and set(seen) == set(ids)
    mem.close()


def test_another_process_journal_or_a_reloaded_copy_is_moved_before_reading(tmp_path: Path) -> None:
    mem, _ = moved_then_journaled(tmp_path, 2, 2)
    two = frozen(tmp_path / "d")  # another process: its journaled add is not in mem's copy
    theirs = two.add("ferry note from the other process about harbours", user_id="u").results[0].id
    assert theirs in {m.id for m in mem.get_all(user_id="u", limit=100).results}
    assert journal_size(mem) == 0  # moved, as every read did before
    mine = mem.add("ferry note journaled before a reload", user_id="u").results[0].id
    copy = mem.storage.vectors.copy
    assert copy is not None
    copy.invalidate()  # as another process's delete or a compaction does: the copy reloads
    assert mine in {h.id for h in mem.search("journaled before a reload", user_id="u").results}
    assert mine in {m.id for m in mem.get_all(user_id="u", limit=100).results}
    two.close()
    mem.close()


# ---------------------------------------------------------------- updates and deletes in groups
def test_updates_and_deletes_do_not_wait_for_the_table_and_move_in_one_batch(tmp_path: Path) -> None:
    mem, ids = moved_then_journaled(tmp_path, 8, 0)
    mem.optimize()
    version = mem.storage.vectors.table.version
    errors: list[BaseException] = []

    def run(fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    jobs = [lambda i=i: mem.update(ids[i], text=f"ferry note {i} changed") for i in range(4)]
    jobs += [lambda i=i: mem.delete(ids[i]) for i in range(4, 7)]
    jobs.append(lambda: mem.delete("no-such-id"))
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    with mem.storage.write_lock.hold():  # the table is busy (a move, a compaction): they go on
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert len(errors) == 1 and isinstance(errors[0], NotFoundError)  # only its own change failed
        assert mem.storage.vectors.table.version == version
        # Acknowledged: durable in the journal, and this process's reads see them.
        assert journal_size(mem) == 7
        listed = {m.id: m.memory for m in mem.get_all(user_id="u", limit=100).results}
        changed = {ids[i]: f"ferry note {i} changed" for i in range(4)}
        assert listed == {**changed, ids[7]: mem.get(ids[7]).memory}
        with pytest.raises(NotFoundError):
            mem.get(ids[5])
    mem.flush()
    # One move: the updates rewritten in one commit, the deletes in one more.
    assert mem.storage.vectors.table.version - version <= 2
    assert journal_size(mem) == 0
    listed = {m.id: m.memory for m in mem.get_all(user_id="u", limit=100).results}
    assert listed == {**{ids[i]: f"ferry note {i} changed" for i in range(4)}, ids[7]: mem.get(ids[7]).memory}
    assert [e.event for e in mem.history(ids[0])] == ["ADD", "UPDATE"]
    assert [e.event for e in mem.history(ids[5])] == ["ADD", "DELETE"]
    assert mem.storage.vectors.count() == 5
    mem.close()


def test_an_update_and_a_delete_of_one_id_in_one_group(tmp_path: Path) -> None:
    mem, ids = moved_then_journaled(tmp_path, 1, 1)
    outcomes: list[str] = []

    def update() -> None:
        try:
            mem.update(ids[1], text="ferry note changed", metadata={"k": 1})
            outcomes.append("updated")
        except NotFoundError:
            outcomes.append("gone")

    threads = [threading.Thread(target=update), threading.Thread(target=lambda: mem.delete(ids[1]))]
    with mem.storage.write_lock.hold():
        for t in threads:
            t.start()
        time.sleep(0.3)
    for t in threads:
        t.join()
    with pytest.raises(NotFoundError):
        mem.get(ids[1])
    events = [e.event for e in mem.history(ids[1])]
    assert events == (["ADD", "UPDATE", "DELETE"] if outcomes == ["updated"] else ["ADD", "DELETE"])
    assert [m.id for m in mem.get_all(user_id="u").results] == [ids[0]]
    mem.close()
