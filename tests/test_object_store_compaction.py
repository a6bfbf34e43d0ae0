"""Tables that grow by one small file per append on object storage (the graph feed, the history)
are compacted as they grow, and nothing is lost in it. Moto S3 emulator, fake embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.stores import graph_feed, lance_history
from mem0_mcp.stores.object_store import remote_store
from tests.support.engine import FakeEmbedder, make_settings


def node(data_dir: Path, uri: str) -> Memory:
    return Memory(make_settings(data_dir, store_uri=uri, store_refresh_seconds=0.3), embedder=FakeEmbedder())


def test_the_feed_is_compacted_as_it_grows(
    s3_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph_feed, "COMPACT_EVERY", 5)
    remote = remote_store(make_settings(tmp_path, store_uri=s3_uri))
    assert remote is not None
    feed = graph_feed.GraphFeed(remote, "node-1")
    for i in range(4):
        feed.append("relate", {"n": i})
    assert not feed.compact_if_due()
    for i in range(4, 6):
        feed.append("relate", {"n": i})
    assert feed.compact_if_due() and not feed.compact_if_due()
    assert [r.body["n"] for r in graph_feed.GraphFeed(remote, "node-2").after(0)] == list(range(6))


def test_the_history_table_is_compacted_as_it_grows(
    s3_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lance_history, "COMPACT_EVERY", 3)
    a = node(tmp_path / "a", s3_uri)
    try:
        history = a.storage.history
        assert isinstance(history, lance_history.LanceHistory)
        ids = [a.add(f"fact number {i}", user_id="alice", infer=False).results[0].id for i in range(3)]
        history.compact_in_background().join(30)  # the one the third add started, or a new one
        assert all(a.history(i)[0].event == "ADD" for i in ids)  # nothing lost in it
    finally:
        a.close()
