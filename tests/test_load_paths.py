"""The shorter write paths of update and delete (issue #16, load): they read the row before the
locks, move the journal only for their own id, and trust the early read only while the row is
unchanged; readers waiting for the journal share one move. Real stores in tmp_path."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mem0_mcp.errors import NotFoundError
from tests.test_write_behind import frozen, journal_size


def test_add_update_delete_of_one_id_while_the_journal_is_unmoved(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    stored = mem.add("the boat is moored at pier four", user_id="u").results[0].id
    mem.flush()
    other = mem.add("the car is parked on level two", user_id="u").results[0].id
    fresh = mem.add("the bike is locked at the station", user_id="u").results[0].id
    assert journal_size(mem) == 2
    # A row already in the table is changed without moving the others' adds.
    assert mem.update(stored, text="the boat is moored at pier five").memory == (
        "the boat is moored at pier five"
    )
    assert journal_size(mem) == 2
    # A journaled row is moved first, then changed, then deleted: in that order.
    assert mem.update(fresh, text="the bike is locked at home", metadata={"k": 1}).metadata == {"k": 1}
    mem.delete(fresh)
    mem.delete(stored)
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
