"""The engine's API for an event loop: each call runs in a worker thread (stores block)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from mem0_mcp.engine.memory import Memory


def _threaded(method: Callable[..., Any]) -> Callable[..., Any]:
    name = method.__name__

    @functools.wraps(method)
    async def call(self: AsyncMemory, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.memory, name)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    return call


class AsyncMemory:
    """The same API as Memory, each call awaited in a worker thread."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    add = _threaded(Memory.add)
    search = _threaded(Memory.search)
    get = _threaded(Memory.get)
    get_all = _threaded(Memory.get_all)
    update = _threaded(Memory.update)
    delete = _threaded(Memory.delete)
    delete_all = _threaded(Memory.delete_all)
    history = _threaded(Memory.history)
    reset = _threaded(Memory.reset)
    stats = _threaded(Memory.stats)
    optimize = _threaded(Memory.optimize)
    close = _threaded(Memory.close)
