"""Stores to export and import in tests (tests/test_transfer.py, tests/test_object_store_transfer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mem0_mcp.cli import main as cli
from mem0_mcp.engine.memory import Memory
from mem0_mcp.models import Scope
from tests.support.engine import FakeEmbedder, make_settings


def fill(data: Path) -> dict[str, str]:
    """A store with every kind of state: metadata, a conversation (neighbours), an update, a
    supersede, a delete, a restore, two scopes, and a graph with an invalidated relation."""
    mem = Memory(make_settings(data, graph_enabled=True), embedder=FakeEmbedder())
    ids: dict[str, str] = {}
    ids["coffee"] = mem.add("Prefers dark roast", user_id="alice", metadata={"topic": "food"}).results[0].id
    talk = mem.add(
        [
            {"role": "user", "content": "Where do you live?", "name": "Bob"},
            {"role": "assistant", "content": "In Lisbon, since 2019"},
        ],
        user_id="alice",
        agent_id="helper",
        timestamp="2024-05-01T10:00:00Z",
    )
    ids["talk"] = talk.results[1].id
    ids["old"] = mem.add("Works at Acme", user_id="alice").results[0].id
    ids["new"] = mem.add("Works at Initech", user_id="alice", supersedes=[ids["old"]]).results[0].id
    mem.update(ids["coffee"], text="Prefers light roast", metadata={"topic": "drinks"})
    ids["gone"] = mem.add("A secret to forget", user_id="bob").results[0].id
    mem.delete(ids["gone"])
    ids["back"] = mem.add("Deleted then restored", user_id="bob").results[0].id
    mem.delete(ids["back"])
    mem.restore(ids["back"])
    graph = mem.graph
    assert graph is not None
    graph.relate("Alice", "works_at", "Acme", Scope(user_id="alice"), source_type="person")
    made = graph.relate("Alice", "lives_in", "Porto", Scope(user_id="alice"))
    graph.store.invalidate(made.id, "2025-01-01T00:00:00.000000+00:00", "moved")
    graph.relate("Bob", "knows", "Alice", Scope(user_id="bob"))
    mem.close()
    return ids


def export(capsys: pytest.CaptureFixture[str], path: Path, *flags: str) -> list[str]:
    assert cli.main(["export", "--out", str(path), *flags]) == 0
    capsys.readouterr()
    return path.read_text(encoding="utf-8").splitlines()
