"""An add's graph part, done after the add returned, without losing it to a crash.

With a real LLM the graph extraction takes as long as the memory manager's own call; with the
scripted one of ``benchmarks/graph.py`` the entity-name embeddings and the graph write still
doubled a verbatim add (6.7 -> 14.2 ms p50). So the add queues the work in the graph log (one
short SQLite commit: the memory ids, the text to extract from, the scope and event time) and
returns; one writer thread per process does the work and marks it done in the same transaction
as the relations it wrote. Work a killed process left queued is done by the next process that
opens the graph (after ``STALE_AFTER``, so a live process's own work is not done twice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mem0_mcp.clock import now_iso
from mem0_mcp.graph.store import GraphStore
from mem0_mcp.models import Scope

logger = logging.getLogger(__name__)

STALE_AFTER = 300.0  # seconds after which queued work nobody finished is taken over
SETTLE_TIMEOUT = 60.0  # how long a graph read waits for this process's queued work


@dataclass(frozen=True)
class QueuedAdd:
    """The graph part of one add: extract from ``text``, write with ``memory_ids`` as sources."""

    text: str
    scope: Scope
    memory_ids: tuple[str, ...]
    event_at: str | None
    queued_at: str = ""

    def body(self) -> dict[str, object]:
        """As the graph log keeps it."""
        return {
            "text": self.text,
            "scope": self.scope.as_dict(),
            "memory_ids": list(self.memory_ids),
            "event_at": self.event_at,
            "queued_at": self.queued_at or now_iso(),
        }

    @classmethod
    def from_body(cls, body: dict[str, object]) -> QueuedAdd:
        """Read back ``body``. Raises ``KeyError``/``TypeError``/``ValueError`` on a malformed one."""
        scope = body["scope"]
        ids = body["memory_ids"]
        if not isinstance(scope, dict) or not isinstance(ids, list):
            raise TypeError("queued graph work: scope and memory_ids must be an object and a list")
        event_at = body.get("event_at")
        return cls(
            text=str(body["text"]),
            scope=Scope(**scope),
            memory_ids=tuple(str(i) for i in ids),
            event_at=None if event_at is None else str(event_at),
            queued_at=str(body.get("queued_at") or ""),
        )

    def age(self) -> float:
        """Seconds since it was queued (0 when unknown)."""
        try:
            queued = datetime.fromisoformat(self.queued_at.replace("Z", "+00:00"))
        except ValueError:
            return 0.0
        return max(0.0, (datetime.now(UTC) - queued).total_seconds())


# Does the work of (item, its seq in the log, the extraction already started for it or None).
Work = Callable[[QueuedAdd, int, "Future[Any] | None"], None]


class GraphQueue:
    """This process's queued graph work: ``submit`` after an add, ``settle`` before a graph read."""

    def __init__(self, store: GraphStore, work: Work) -> None:
        self.store = store
        self._work = work
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mem0-graph-write")
        self._inflight: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def submit(self, item: QueuedAdd, started: Future[Any] | None) -> bool:
        """Queue ``item`` in the log, then do it in the writer thread. False when the store keeps no
        queue (the caller does the work itself). Raises ``StoreError`` when queuing fails."""
        seq = self.store.queue_job(item.body())
        if seq == 0:
            return False
        self._run(item, seq, started)
        return True

    def _run(self, item: QueuedAdd, seq: int, started: Future[Any] | None) -> None:
        future = self._pool.submit(self._work, item, seq, started)
        with self._lock:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._inflight.discard(future)

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait until this process's queued work is written (a read then sees it); False on timeout."""
        with self._lock:
            pending = set(self._inflight)
        if not pending:
            return True
        _, not_done = wait_all(pending, timeout=timeout)
        if not_done:
            logger.warning("graph: %d queued add(s) still being written after %.0f s", len(not_done), timeout)
        return not not_done

    def take_over_stale(self, older_than: float = STALE_AFTER) -> int:
        """Do the queued work that a process which died left behind; how many items."""
        taken = 0
        for seq, body in self.store.open_jobs():
            try:
                item = QueuedAdd.from_body(dict(body))
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("graph: queued work %d is unreadable (%s); marked done", seq, exc)
                self.store.finish_job(seq, failed=f"unreadable: {exc}")
                continue
            if item.age() >= older_than:
                self._run(item, seq, None)
                taken += 1
        if taken:
            logger.info("graph: taking over %d queued add(s) a stopped process left", taken)
        return taken

    def watch(self, can_work: Callable[[], bool], every: float = STALE_AFTER) -> None:
        """Take over stale queued work now and every ``every`` seconds until closed (a process
        that stopped with work queued may be restarted within ``STALE_AFTER``), while
        ``can_work()`` (an LLM to extract with). Runs in a daemon thread."""

        def loop() -> None:
            while not self._closed.is_set():
                try:
                    if can_work():
                        self.take_over_stale()
                except Exception:
                    logger.exception("graph: taking over queued work failed; will retry")
                self._closed.wait(every)

        threading.Thread(target=loop, name="mem0-graph-watch", daemon=True).start()

    def close(self, timeout: float = 10.0) -> None:
        """Let queued work finish (bounded), then stop the writer thread; what is left stays queued
        in the log, for this data dir's next process."""
        self._closed.set()
        self.settle(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
