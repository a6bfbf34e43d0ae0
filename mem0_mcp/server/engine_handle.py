"""Opens the memory engine in a background thread and hands it to whoever waits for it.

The MCP handshake must not wait for LanceDB (~2.4 s to import) or the embedding model (~4 s),
so the engine is opened off the event loop and tool calls await readiness instead. Importing
this module stays cheap: the engine is imported inside the opening thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory

logger = logging.getLogger(__name__)

MemoryFactory = Callable[["Settings"], "Memory"]


def _default_factory(settings: Settings) -> Memory:
    from mem0_mcp.engine.memory import Memory

    if settings.llm_provider == "sampling":
        # The client's own model, asked through whichever request is in flight (see server.py).
        from mem0_mcp.server.sampling import RequestSamplingLLM

        return Memory(settings, llm=RequestSamplingLLM(max_tokens=settings.llm_max_tokens))
    return Memory(settings)


class EngineHandle:
    """A ``Memory`` that is opening, open, or failed to open; shared by every session of a server.

    Several transports enter the server lifespan once per connection (SSE does), so the handle
    counts holders and closes the engine when the last one leaves.
    """

    def __init__(self, settings: Settings, factory: MemoryFactory | None = None) -> None:
        self.settings = settings
        self._factory = factory or _default_factory
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._memory: Memory | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._holders = 0
        self.started_at: float | None = None
        self.open_seconds: float | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self.started_at = time.perf_counter()
            self._thread = threading.Thread(target=self._open, name="mem0-engine-open", daemon=True)
            self._thread.start()

    def _open(self) -> None:
        try:
            memory = self._factory(self.settings)
        except BaseException as exc:
            self._error = exc
            logger.error("memory engine failed to open: %s", exc)
        else:
            self._memory = memory
            assert self.started_at is not None
            self.open_seconds = time.perf_counter() - self.started_at
            logger.info("memory engine open in %.2fs (%s)", self.open_seconds, self.settings.data_dir)
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self._memory is not None

    @property
    def failed(self) -> BaseException | None:
        return self._error if self._done.is_set() else None

    def wait(self, timeout: float | None = None) -> Memory:
        """Block until the engine is open; re-raise the error it failed with."""
        self.start()
        if not self._done.wait(timeout):
            raise TimeoutError("the memory engine is still opening")
        if self._error is not None:
            raise self._error
        assert self._memory is not None
        return self._memory

    async def get(self) -> Memory:
        if self._done.is_set():
            return self.wait()
        import anyio.to_thread

        # Abandoning on cancel is safe: waiting on the event has no side effect.
        await anyio.to_thread.run_sync(self._done.wait, abandon_on_cancel=True)
        return self.wait()

    def acquire(self) -> None:
        with self._lock:
            self._holders += 1
        self.start()

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders <= 0
        if last:
            self.close()

    def close(self) -> None:
        """Close the engine once it has opened, and allow a later ``start`` to reopen it."""
        thread = self._thread
        if thread is None:
            return
        self._done.wait()
        with self._lock:
            if self._holders > 0 or self._thread is not thread:
                return
            memory, self._memory = self._memory, None
            self._thread = None
            self._error = None
            self._done = threading.Event()
        if memory is not None:
            try:
                memory.close()
            except Exception:
                logger.exception("closing the memory engine failed")
