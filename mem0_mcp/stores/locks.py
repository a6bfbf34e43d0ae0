"""Write serialization: one writer at a time in a process (thread lock) and across processes
sharing a data dir (an advisory file lock), so duplicate checks and multi-store writes are atomic."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mem0_mcp.errors import StoreError


class WriteLock:
    """``refuse``: a data dir that cannot be written (read-only): every ``hold()`` raises a
    StoreError with that message instead, so a write fails before it has written anything.

    ``path`` None: threads of this process only (a store on object storage, where LanceDB's
    commits are what keeps writers of several nodes apart)."""

    def __init__(self, path: Path | None, *, refuse: str | None = None) -> None:
        self._refuse = refuse
        if refuse is None and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self._refuse is not None:
            raise StoreError(self._refuse)
        with self._thread_lock:
            if self._depth == 0 and self._path is not None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None
