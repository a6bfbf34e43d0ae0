"""Updates and deletes through the write-behind journal (issue #16, load): acknowledged once in
the journal with their history, seen at once by this process (its in-process copy) and by every
other (which moves the journal first, as for journaled adds), applied to the table by the mover,
never lost by a crash. Real stores in tmp_path; the crash kills a real child process."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.write_behind import move_journal
from mem0_mcp.errors import NotFoundError
from mem0_mcp.stores.history import HistoryStore
from tests.support.engine import FakeEmbedder, make_settings
from tests.test_write_behind import child_script, frozen, journal_size


def ids_listed(mem: Memory) -> dict[str, str]:
    return {m.id: m.memory for m in mem.get_all(user_id="u", limit=100).results}


def test_an_update_and_a_delete_wait_for_no_table_commit(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    kept, gone = (mem.add(t, user_id="u").results[0].id for t in ("the gate code is 1234", "the dog is Rex"))
    mem.flush()
    version = mem.storage.vectors.table.version
    with mem.storage.write_lock.hold():  # a move or compaction holds the table
        assert mem.update(kept, text="the gate code is 4321").memory == "the gate code is 4321"
        assert mem.delete(gone).deleted == 1
    assert mem.storage.vectors.table.version == version
    assert journal_size(mem) == 2
    # This process reads them from its copy, without moving the journal.
    assert ids_listed(mem) == {kept: "the gate code is 4321"}
    assert gone not in [h.id for h in mem.search("dog Rex", user_id="u").results]
    assert mem.get(kept).memory == "the gate code is 4321"
    with pytest.raises(NotFoundError):
        mem.get(gone)
    assert journal_size(mem) == 2
    assert mem.delete(gone).deleted == 0  # already deleted
    mem.flush()
    assert journal_size(mem) == 0
    assert mem.storage.vectors.count() == 1
    assert mem.storage.vectors.get(kept)["memory"] == "the gate code is 4321"  # type: ignore[index]
    assert [e.event for e in mem.history(kept)] == ["ADD", "UPDATE"]
    assert [e.event for e in mem.history(gone)] == ["ADD", "DELETE"]
    mem.close()


@pytest.mark.parametrize("read", ["get", "list", "search"])
def test_another_process_sees_an_acknowledged_change_at_once(tmp_path: Path, read: str) -> None:
    one = frozen(tmp_path / "d")
    two = frozen(tmp_path / "d")
    a, b = (one.add(t, user_id="u").results[0].id for t in ("tea at five", "coffee at nine"))
    one.flush()
    # two has read the table (its copy holds both rows as they were).
    assert set(ids_listed(two)) == {a, b}
    one.update(a, text="tea at six")
    one.delete(b)
    assert journal_size(one) == 2  # not moved: one's mover is stopped
    if read == "get":
        assert two.get(a).memory == "tea at six"
        with pytest.raises(NotFoundError):
            two.get(b)
    elif read == "list":
        assert ids_listed(two) == {a: "tea at six"}
    else:
        hits = {h.id: h.memory for h in two.search("tea coffee", user_id="u", limit=10).results}
        assert hits == {a: "tea at six"}
    one.close()
    two.close()


def test_acknowledged_updates_and_deletes_survive_a_crash(tmp_path: Path) -> None:
    data = tmp_path / "d"
    child = child_script(
        data,
        """
        ids = [mem.add(t, user_id="u").results[0].id for t in ("red boat", "blue car", "green bike")]
        mem.flush()
        mem.storage.mover.close()
        mem.update(ids[0], text="red boat with sails")
        mem.delete(ids[1])
        fresh = mem.add("yellow kite", user_id="u").results[0].id
        mem.update(fresh, text="yellow kite with a tail", metadata={"k": 1})
        print(" ".join([*ids, fresh]), flush=True)
        os._exit(0)  # no close(): the changes are only in the journal
        """,
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    red, blue, green, kite = out.stdout.strip().splitlines()[-1].split()
    history = HistoryStore(data / "history.sqlite3")
    assert sorted(p.op for p in history.pending(10)) == ["add", "delete", "update"]
    history.close()

    mem = Memory(make_settings(data), embedder=FakeEmbedder())
    # The journaled update is no "text the history does not end with" (the table has the old one).
    assert mem.storage.findings == []
    assert ids_listed(mem) == {
        red: "red boat with sails",
        green: "green bike",
        kite: "yellow kite with a tail",
    }
    assert mem.get(kite).metadata == {"k": 1}
    mem.flush()
    assert journal_size(mem) == 0 and mem.storage.vectors.count() == 3
    assert [e.event for e in mem.history(blue)] == ["ADD", "DELETE"]
    mem.close()


def test_an_update_of_an_add_a_crash_left_half_moved_is_not_lost(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    added = mem.add("the meeting is at noon", user_id="u").results[0].id
    # A move that marked its attempt and died before the append.
    (pending,) = mem.storage.history.pending(10)
    mem.storage.history.mark_attempt([pending.seq])
    mem.update(added, text="the meeting is at one")
    assert [p.op for p in mem.storage.history.pending(10)] == ["update"]
    mem.flush()
    assert mem.storage.vectors.count() == 1
    assert mem.storage.vectors.get(added)["memory"] == "the meeting is at one"  # type: ignore[index]
    mem.close()


def test_an_add_of_a_text_another_process_just_deleted_or_changed_is_stored(tmp_path: Path) -> None:
    one = frozen(tmp_path / "d")
    two = frozen(tmp_path / "d")
    gone = one.add("the wifi password is hunter2", user_id="u").results[0].id
    changed = one.add("the printer is on floor two", user_id="u").results[0].id
    one.flush()
    assert set(ids_listed(two)) == {gone, changed}
    one.delete(gone)
    one.update(changed, text="the printer is on floor three")
    again = two.add("the wifi password is hunter2", user_id="u").results[0]
    assert again.event == "ADD" and again.id != gone
    told = two.add("the printer is on floor two", user_id="u").results[0]
    assert told.event == "ADD" and told.id != changed
    # The journaled new text is a duplicate, as before.
    assert two.add("the printer is on floor three", user_id="u").results[0].event == "NONE"
    one.close()
    two.close()


def test_write_behind_off_writes_updates_and_deletes_to_the_table(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d", write_behind=False)
    a, b = (mem.add(t, user_id="u").results[0].id for t in ("one fact", "another fact"))
    mem.update(a, text="one fact changed")
    mem.delete(b)
    assert journal_size(mem) == 0
    assert mem.storage.vectors.count() == 1
    mem.close()


def move_with(
    mem: Memory,
    during: Callable[[dict[str, int]], None],
    after: Callable[[], None] = lambda: None,
    through: int | None = None,
) -> None:
    """A move of ``mem``'s journal as its mover does it, running ``during`` once a batch is
    taken (the journal lock let go) and before it is written to the table, ``after`` once it
    is written and dropped from the journal."""
    storage = mem.storage
    copy = storage.vectors.copy
    assert copy is not None

    def on_batch(seqs: dict[str, int]) -> None:
        copy.moving(seqs)
        during(seqs)

    def on_dropped(seqs: list[int]) -> None:
        copy.forget(seqs)
        after()

    with storage.write_lock.hold():
        move_journal(
            storage.history,
            storage.vectors,
            on_batch=on_batch,
            on_dropped=on_dropped,
            journal_lock=storage.journal_lock,
            through=through,
        )


def test_changes_journaled_while_a_move_writes_the_table_wait_for_none_of_it(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    mem.add("a table to start from", user_id="v")
    mem.flush()
    assert mem.storage.vectors.wait_for_copy(30)
    kept, gone = (mem.add(t, user_id="u").results[0].id for t in ("blue door", "green gate"))
    assert journal_size(mem) == 2
    mem.search("door", user_id="u")  # served by the copy: the journal stays
    assert journal_size(mem) == 2
    done: list[str] = []

    def during(seqs: dict[str, int]) -> None:
        if done:
            return

        # Another thread of the engine: it must not wait for this move (no journal lock held).
        def change() -> None:
            mem.update(kept, text="blue door with a bell")
            mem.delete(gone)
            mem.add("red window", user_id="u")
            done.append("yes")

        worker = threading.Thread(target=change)
        worker.start()
        worker.join(20)
        assert done == ["yes"]

    between: list[tuple[int, set[str]]] = []
    move_with(mem, during, lambda: between.append((journal_size(mem), set(ids_listed(mem).values()))))
    # The first batch wrote the adds as they were; the newer staged states are what reads saw
    # (from the copy), then the next batch wrote them.
    assert between[0] == (3, {"blue door with a bell", "red window"})
    assert journal_size(mem) == 0
    assert sorted(r["memory"] for r in mem.storage.vectors.query("user_id = 'u'")) == [
        "blue door with a bell",
        "red window",
    ]
    assert set(ids_listed(mem).values()) == {"blue door with a bell", "red window"}
    mem.close()


def test_another_process_appending_an_older_state_does_not_undo_a_staged_change(tmp_path: Path) -> None:
    one = frozen(tmp_path / "d")
    one.add("a table to start from", user_id="v")
    one.flush()
    two = frozen(tmp_path / "d")
    assert one.storage.vectors.wait_for_copy(30)
    key = one.add("the shop opens at nine", user_id="u").results[0].id
    gone = one.add("the shop closes at six", user_id="u").results[0].id
    assert set(ids_listed(one)) == {key, gone}  # staged in one's copy, served from it
    assert journal_size(one) == 2

    def during(seqs: dict[str, int]) -> None:
        if key in seqs:
            one.update(key, text="the shop opens at ten")
            one.delete(gone)

    move_with(two, during)  # two appends both adds as they were when it took them
    assert ids_listed(one) == {key: "the shop opens at ten"}
    hits = {h.id: h.memory for h in one.search("shop opens closes", user_id="u", limit=5).results}
    assert hits == {key: "the shop opens at ten"}
    assert ids_listed(two) == {key: "the shop opens at ten"}
    one.flush()
    assert ids_listed(one) == ids_listed(two) == {key: "the shop opens at ten"}
    assert one.storage.vectors.count() == 2
    one.close()
    two.close()


def test_a_move_ends_once_what_was_journaled_before_it_is_moved(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    mem.add("a table to start from", user_id="v")
    mem.flush()
    first = mem.add("first note", user_id="u").results[0].id
    mark = mem.storage.history.pending_watermark()
    assert mark is not None
    # A change of a journaled memory replaces its entry (a newer seq) and keeps its place.
    mem.update(first, text="first note, changed")
    assert mem.storage.history.has_pending_through(mark)
    batches: list[dict[str, int]] = []

    def during(seqs: dict[str, int]) -> None:
        batches.append(seqs)
        if len(batches) < 20:  # changes keep coming while the move writes the table
            mem.add(f"note number {len(batches)}", user_id="u")

    move_with(mem, during, through=mark)
    assert len(batches) == 1  # it did not chase them (readers wait for a move)
    assert not mem.storage.history.has_pending_through(mark)
    assert journal_size(mem) == 1
    assert mem.storage.vectors.get(first)["memory"] == "first note, changed"  # type: ignore[index]
    mem.close()
