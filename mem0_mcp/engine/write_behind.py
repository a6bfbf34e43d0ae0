"""Write-behind of verbatim adds: the SQLite journal first, the LanceDB table right after.

A LanceDB append commits a table version (7-10 ms for one row here, more than the rest of an add
together). A verbatim add therefore commits its rows and vectors to the journal in the history
database, in the same transaction as their ADD events, and returns; a background thread moves
them into the table. Nothing is acknowledged before it is durable, and nothing is read before it
is in the table:

- every read and every other write of the engine first moves whatever the journal holds (any
  process's) into the table, under the write lock, so a search right after an add finds it and a
  duplicate check sees every earlier row;
- a move marks its rows as attempted before the append and drops them after it, so a crash in
  between leaves rows that are checked against the table by id when moved again: never twice,
  never lost. A process that starts finds a crashed one's rows and moves them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from mem0_mcp.stores.history import HistoryStore
from mem0_mcp.stores.vectors import VectorStore

logger = logging.getLogger(__name__)

# Rows per LanceDB append when the journal is long (a batched ingest, or a restart after a crash).
MOVE_BATCH = 2000
# How long the background move waits for more adds to share one LanceDB commit. A commit costs
# 7-10 ms of CPU whatever its size, and adds arriving back to back would otherwise each pay it
# while the next add embeds on the same cores. Reads never wait for it: they move the journal
# themselves.
LINGER_SECONDS = 0.1


def move_journal(
    history: HistoryStore, vectors: VectorStore, *, on_moved: Callable[[int], None] | None = None
) -> int:
    """Append every journaled row to the memory table; the caller holds the write lock.

    Returns how many rows reached the table. Raises whatever the stores raise: rows not moved
    stay in the journal for the next attempt.
    """
    moved = 0
    while True:
        batch = history.pending(MOVE_BATCH)
        if not batch:
            return moved
        retried = [p.row["id"] for p in batch if p.attempts]
        present = vectors.existing_ids(retried) if retried else set()
        history.mark_attempt([p.seq for p in batch])
        todo = [p for p in batch if p.row["id"] not in present]
        if todo:
            vectors.add([p.row for p in todo], np.stack([p.vector for p in todo]))
        history.drop_pending([p.seq for p in batch])
        moved += len(todo)
        if on_moved is not None and todo:
            on_moved(len(todo))


class JournalMover:
    """One background thread that runs ``move`` whenever it is woken (after each journaled add)."""

    def __init__(self, move: Callable[[], None], *, linger: float = LINGER_SECONDS) -> None:
        self._move = move
        self._linger = linger
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        if self._stopping.is_set():
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mem0-journal", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Returns early when closing; adds made meanwhile join this move.
            if self._stopping.wait(self._linger):
                return
            self._wake.clear()
            try:
                self._move()
            except Exception as exc:
                # The rows are safe in the journal; the next read or write retries and raises.
                logger.warning("moving journaled memories into the table failed (will retry): %s", exc)

    def close(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
