"""Write-behind of verbatim adds: durable in the SQLite journal at once, in LanceDB before any read.

The background mover is stopped (``_mover.close()``) where a test needs rows to stay journaled;
the stores are the real ones in tmp_path, and the crash test kills a real child process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mem0_mcp.engine import reindex as rx
from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import StoreError
from mem0_mcp.stores.history import HistoryStore
from tests.support.engine import FakeEmbedder, make_settings

ROOT = Path(__file__).resolve().parents[1]


def frozen(data_dir: Path, **overrides: object) -> Memory:
    """An engine whose background mover never runs: adds stay in the journal until a read."""
    mem = Memory(make_settings(data_dir, **overrides), embedder=FakeEmbedder())
    mem.storage.mover.close()
    return mem


def journal_size(mem: Memory) -> int:
    return len(mem.storage.history.pending(10_000))


def child_script(data: Path, body: str) -> str:
    """A program that opens an engine on ``data`` as ``mem`` (fake embedder), then runs ``body``."""
    head = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from tests.support.engine import FakeEmbedder, make_settings
from mem0_mcp.engine.memory import Memory
mem = Memory(make_settings(Path({str(data)!r})), embedder=FakeEmbedder())
"""
    return head + textwrap.dedent(body)


def test_add_is_durable_in_the_journal_and_in_the_table_before_a_search(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    added = mem.add("I keep bees on the roof", user_id="u").results[0]
    assert added.event == "ADD"
    assert journal_size(mem) == 1
    assert mem.storage.vectors.count() == 0
    assert [e.event for e in mem.history(added.id)] == ["ADD"]  # the history is written with it
    hits = mem.search("bees", user_id="u").results
    assert [h.id for h in hits] == [added.id]
    assert journal_size(mem) == 0
    assert mem.storage.vectors.count() == 1
    mem.close()


def test_background_mover_empties_the_journal(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder())
    mem.add([{"role": "user", "content": f"fact number {i}"} for i in range(30)], user_id="u")
    mem.storage.mover.close()  # joins the thread: it has moved the rows or was waiting to
    mem.flush()
    assert journal_size(mem) == 0
    assert mem.storage.vectors.count() == 30
    mem.close()


def test_every_read_and_write_sees_journaled_adds(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    first = mem.add("likes green tea", user_id="u").results[0].id
    assert mem.get(first).memory == "likes green tea"
    second = mem.add("plays the cello", user_id="u").results[0].id
    assert mem.get_all(user_id="u").total == 2
    third = mem.add("lives in Porto", user_id="u").results[0].id
    assert mem.update(third, text="lives in Lisbon").memory == "lives in Lisbon"
    fourth = mem.add("owns a red bike", user_id="u").results[0].id
    assert mem.delete(fourth).deleted == 1
    assert mem.stats().memories == 3
    mem.add("one more", user_id="u")
    assert mem.delete_all(user_id="u").deleted == 4
    assert journal_size(mem) == 0
    assert mem.history(first)[-1].event == "DELETE" and mem.history(second)[-1].event == "DELETE"
    mem.close()


def test_duplicate_check_sees_the_journal(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    first = mem.add("allergic to peanuts", user_id="u").results[0]
    again = mem.add("allergic to peanuts", user_id="u").results[0]
    assert (again.event, again.id) == ("NONE", first.id)
    other_scope = mem.add("allergic to peanuts", user_id="v").results[0]
    assert other_scope.event == "ADD"
    assert journal_size(mem) == 2
    mem.flush()
    assert mem.storage.vectors.count() == 2
    mem.close()


def test_another_engine_on_the_data_dir_sees_journaled_adds_once(tmp_path: Path) -> None:
    writer = frozen(tmp_path / "d")
    added = writer.add("the wifi password is on the fridge", user_id="u").results[0].id
    reader = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder())
    assert [h.id for h in reader.search("wifi password", user_id="u").results] == [added]
    # The writer must not append the rows the reader moved.
    assert [h.id for h in writer.search("wifi password", user_id="u").results] == [added]
    assert writer.storage.vectors.count() == 1
    reader.close()
    writer.close()


@pytest.mark.slow
def test_crashed_process_journal_is_moved_by_the_next_one(tmp_path: Path) -> None:
    data = tmp_path / "d"
    child = child_script(
        data,
        """
        mem.storage.mover.close()
        print(mem.add("the spare key is under the blue pot", user_id="u").results[0].id, flush=True)
        os._exit(0)  # no close(): the row is only in the journal
        """,
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    added = out.stdout.strip().splitlines()[-1]
    history = HistoryStore(data / "history.sqlite3")
    assert len(history.pending(10)) == 1
    history.close()

    mem = Memory(make_settings(data), embedder=FakeEmbedder())
    assert [h.id for h in mem.search("spare key", user_id="u").results] == [added]
    assert [e.event for e in mem.history(added)] == ["ADD"]
    assert mem.storage.vectors.count() == 1
    mem.close()


def test_a_move_interrupted_after_the_append_does_not_duplicate(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    added = mem.add("runs on Tuesdays", user_id="u").results[0].id
    # What a crash between the LanceDB append and the journal cleanup leaves behind.
    (pending,) = mem.storage.history.pending(10)
    mem.storage.history.mark_attempt([pending.seq])
    mem.storage.vectors.add([pending.row], pending.vector[None, :])
    assert mem.storage.vectors.count() == 1 and journal_size(mem) == 1
    assert [h.id for h in mem.search("Tuesdays", user_id="u").results] == [added]
    mem.flush()  # a search served by the in-process copy leaves the journal to the mover
    assert mem.storage.vectors.count() == 1
    assert journal_size(mem) == 0
    assert [h.id for h in mem.search("Tuesdays", user_id="u").results] == [added]
    mem.close()


def test_a_failing_move_raises_and_loses_nothing(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    kept = mem.add("stored before the trouble", user_id="u").results[0].id
    mem.flush()
    # A row the table refuses (a list where a string goes) stands in for a full disk. (A row
    # that can never be moved, such as a vector of another dimension, is set aside instead:
    # test_doctor.py.)
    bad = {"id": "bad-row", "memory": "x", "hash": "h", "search_text": "x", "user_id": ["u"], "metadata": {}}
    vector = np.ones(mem.storage.vectors.dimension or 0, dtype=np.float32)
    mem.storage.history.add([], pending=[(bad, vector)], now="2026-01-01T00:00:00Z")
    with pytest.raises(StoreError, match="journal"):
        mem.search("trouble", user_id="u")
    assert journal_size(mem) == 1  # still there for the next attempt
    assert mem.storage.vectors.get(kept) is not None
    mem.storage.history.drop_pending([p.seq for p in mem.storage.history.pending(10)])
    assert [h.id for h in mem.search("trouble", user_id="u").results] == [kept]
    mem.close()


def test_write_behind_off_appends_inside_the_add(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path / "d", write_behind=False), embedder=FakeEmbedder())
    mem.storage.mover.close()
    mem.add("no journal for me", user_id="u")
    assert journal_size(mem) == 0
    assert mem.storage.vectors.count() == 1
    mem.close()


def test_close_moves_the_journal_and_reset_clears_it(tmp_path: Path) -> None:
    mem = frozen(tmp_path / "d")
    mem.add("moved at close", user_id="u")
    mem.close()
    reopened = frozen(tmp_path / "d")
    assert reopened.storage.vectors.count() == 1 and journal_size(reopened) == 0
    reopened.add("gone at reset", user_id="u")
    reopened.reset()
    assert journal_size(reopened) == 0 and reopened.stats().memories == 0
    reopened.close()


def test_reindex_moves_the_journal_first(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d")
    mem = Memory(settings, embedder=FakeEmbedder())
    mem.add("in the table", user_id="u")
    mem.close()
    # Journaled by a process that stopped before moving it (a vector of the old model).
    row = {
        "id": "journaled",
        "memory": "in the journal",
        "hash": "j",
        "search_text": "in the journal",
        "user_id": "u",
        "metadata": {},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    history = HistoryStore(settings.history_path)
    vector = FakeEmbedder().embed(["in the journal"])[0]
    seqs = history.add([], pending=[(row, vector)], now=row["created_at"])
    # The journal's seq of each row comes back with the write (the copy stages rows by it).
    entry = history.pending_entry("journaled")
    assert entry is not None and seqs == {"journaled": entry.seq}
    history.close()
    result = rx.reindex(settings, embedder=FakeEmbedder(dimension=32, name="fake-32"))
    assert result.rows == 2 and result.new_dimension == 32
    after = Memory(settings, embedder=FakeEmbedder(dimension=32, name="fake-32"))
    assert after.get("journaled").memory == "in the journal"
    assert after.storage.vectors.count() == 2 and journal_size(after) == 0
    after.close()


@pytest.mark.slow
def test_two_processes_adding_at_once_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    data = tmp_path / "d"
    child = child_script(
        data,
        """
        who = sys.argv[1]
        for i in range(40):
            mem.add(f"{who} note {i}", user_id="u")
            mem.add("a line both processes write", user_id="u")
            if i % 10 == 0:
                mem.search("note", user_id="u")
        mem.close()
        """,
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", child, who], stderr=subprocess.PIPE, text=True)
        for who in ("alpha", "beta")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    mem = Memory(make_settings(data), embedder=FakeEmbedder())
    texts = [r.memory for off in (0, 100) for r in mem.get_all(user_id="u", limit=100, offset=off).results]
    assert sorted(texts) == sorted(
        [f"{who} note {i}" for who in ("alpha", "beta") for i in range(40)] + ["a line both processes write"]
    )
    assert journal_size(mem) == 0
    mem.close()


def test_a_journaled_add_does_not_wait_for_compaction(tmp_path: Path) -> None:
    """Compaction holds the write lock (seconds on a large table); adds only need the journal."""
    import threading

    from mem0_mcp.stores.locks import WriteLock

    mem = frozen(tmp_path / "d")
    mem.add("first, to create the table", user_id="u")
    mem.flush()
    held, release = threading.Event(), threading.Event()

    def compaction_elsewhere() -> None:  # another process's optimize, say
        with WriteLock(tmp_path / "d" / "write.lock").hold():
            held.set()
            release.wait(60)

    holder = threading.Thread(target=compaction_elsewhere)
    holder.start()
    assert held.wait(30)
    done = threading.Event()
    adder = threading.Thread(target=lambda: (mem.add("added meanwhile", user_id="u"), done.set()))
    adder.start()
    assert done.wait(30), "the add waited for the write lock"
    release.set()
    holder.join()
    adder.join()
    assert "added meanwhile" in [h.memory for h in mem.search("meanwhile", user_id="u").results]
    mem.close()


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_a_lost_history_is_said_at_start_and_by_memory_history(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting or truncating history.sqlite3 loses no memory, and nothing pretends otherwise (#16)."""
    settings = make_settings(tmp_path / "data")
    mem = Memory(settings, embedder=FakeEmbedder())
    item = mem.add("Keeps bees on the roof", user_id="u").results[0]
    mem.close()
    for path in settings.history_path.parent.glob(settings.history_path.name + "*"):
        if how == "deleted" or path != settings.history_path:
            path.unlink()
        else:
            path.write_bytes(b"")
    with caplog.at_level("WARNING"):
        mem = Memory(settings, embedder=FakeEmbedder())
    try:
        assert any("holds no history" in r.getMessage() for r in caplog.records)
        assert mem.get(item.id).memory == "Keeps bees on the roof"
        with pytest.raises(StoreError, match="exists but has no history"):
            mem.history(item.id)
        mem.update(item.id, text="Keeps bees on the roof and in the garden")
        assert [h.event for h in mem.history(item.id)] == ["UPDATE"]
    finally:
        mem.close()
