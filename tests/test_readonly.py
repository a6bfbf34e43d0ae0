"""A data dir on a read-only filesystem opens read-only: reads work, every write is refused with a
clear error before anything is written (#16).

Runs on a read-only bind mount the test makes (root on Linux); skipped with the reason elsewhere.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mcp.client import Client

from mem0_mcp.config import Settings
from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import StoreError
from mem0_mcp.models import Scope
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.server import error_text, fake_server, structured

READ_ONLY = "is read-only"


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True)


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    """A store with one memory (and its history), then the data dir remounted read-only."""
    source = tmp_path / "data"
    settings = make_settings(source)
    mem = Memory(settings, embedder=FakeEmbedder())
    item = mem.add("Keeps bees on the roof", user_id="u")
    mem.update(item.results[0].id, text="Keeps bees on the roof and in the garden")
    mem.add("Plays the cello on Sundays", user_id="u")
    mem.close()
    with read_only_view(source, tmp_path / "ro") as view:
        yield make_settings(view), item.results[0].id


@contextmanager
def read_only_view(source: Path, view: Path) -> Iterator[Path]:
    """``source`` bind-mounted read-only at ``view``; the test is skipped where that cannot be done."""
    view.mkdir()
    done = _run("mount", "--bind", str(source), str(view))
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount a directory here (needs root on Linux): {done.stderr.strip()}")
    try:
        done = _run("mount", "-o", "remount,ro,bind", str(view))
        if done.returncode != 0:
            pytest.skip(f"cannot remount a bind mount read-only here: {done.stderr.strip()}")
        yield view
    finally:
        _run("umount", "-l", str(view))


def _listing(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}


def test_reads_work_and_writes_are_refused_before_anything_is_written(
    read_only_store: tuple[Settings, str], caplog: pytest.LogCaptureFixture
) -> None:
    settings, memory_id = read_only_store
    before = _listing(settings.data_dir)
    with caplog.at_level("WARNING"):
        mem = Memory(settings, embedder=FakeEmbedder())
    try:
        assert any(READ_ONLY in r.getMessage() for r in caplog.records)
        hits = mem.search("bees", user_id="u").results
        assert hits and hits[0].id == memory_id
        assert {m.memory for m in mem.get_all(user_id="u").results} == {
            "Keeps bees on the roof and in the garden",
            "Plays the cello on Sundays",
        }
        assert mem.get(memory_id).memory == "Keeps bees on the roof and in the garden"
        assert [h.event for h in mem.history(memory_id)] == ["ADD", "UPDATE"]
        writes = {
            "add": lambda: mem.add("A new fact", user_id="u"),
            "update": lambda: mem.update(memory_id, text="changed"),
            "delete": lambda: mem.delete(memory_id),
            "restore": lambda: mem.restore(memory_id),
            "delete_all": lambda: mem.delete_all(user_id="u"),
        }
        for name, write in writes.items():
            with pytest.raises(StoreError) as err:
                write()
            message = str(err.value)
            assert f"the data dir {settings.data_dir} {READ_ONLY}" in message, (name, message)
            assert "writes are refused" in message, (name, message)
        assert mem.get(memory_id).memory == "Keeps bees on the roof and in the garden"
    finally:
        mem.close()
    assert _listing(settings.data_dir) == before


async def test_through_an_mcp_client_search_works_and_an_add_says_read_only(
    read_only_store: tuple[Settings, str],
) -> None:
    settings, memory_id = read_only_store
    async with Client(fake_server(settings)) as client:
        hits = structured(await client.call_tool("search_memory", {"query": "bees", "user_id": "u"}))
        assert [h["id"] for h in hits["results"]][:1] == [memory_id]
        history = structured(await client.call_tool("memory_history", {"memory_id": memory_id}))
        assert history
        failed = await client.call_tool("add_memory", {"text": "A new fact", "user_id": "u"})
        message = error_text(failed)
        assert READ_ONLY in message and "writes are refused" in message, message
        failed = await client.call_tool("delete_memory", {"memory_id": memory_id})
        assert READ_ONLY in error_text(failed)


def test_the_graph_reads_and_refuses_writes_on_a_read_only_data_dir(tmp_path: Path) -> None:
    source = tmp_path / "data"
    settings = make_settings(source, graph_enabled="true")
    mem = Memory(settings, embedder=FakeEmbedder())
    assert mem.graph is not None
    mem.graph.add_relation("Alice", "works_at", "Acme", Scope(user_id="u"))
    mem.close()
    with read_only_view(source, tmp_path / "ro") as view:
        before = _listing(view)
        mem = Memory(make_settings(view, graph_enabled="true"), embedder=FakeEmbedder())
        try:
            assert mem.graph is not None
            entity = mem.graph.get_entity("Alice", Scope(user_id="u"))
            assert [r["destination"] for r in entity["relations"]] == ["Acme"]
            with pytest.raises(StoreError, match=READ_ONLY):
                mem.graph.add_relation("Alice", "lives_in", "Zurich", Scope(user_id="u"))
        finally:
            mem.close()
        assert _listing(view) == before
