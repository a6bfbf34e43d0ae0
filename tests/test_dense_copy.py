"""How the in-process copy stays current: compaction keeps it, a large foreign write reloads it
in the background while LanceDB answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FakeEmbedder, make_settings

from mem0_mcp.memory import Memory
from mem0_mcp.stores import vectors


def test_compaction_keeps_the_copy(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder())
    for i in range(5):
        mem.add([{"role": "user", "content": f"fact {i}.{j} about otters"} for j in range(3)], user_id="u")
    mem.search("otters", user_id="u")
    copy = mem._vectors._cache
    assert copy is not None and copy.version == int(mem._vectors.table.version)
    mem.optimize()
    assert mem._vectors._cache is copy  # not reloaded...
    assert copy.version == int(mem._vectors.table.version)  # ...and current
    assert len(mem.search("otters", user_id="u", limit=100).results) == 15
    mem.close()


def test_a_large_stale_copy_reloads_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "SYNC_RELOAD_ROWS", 5)
    settings = make_settings(tmp_path / "d")
    one = Memory(settings, embedder=FakeEmbedder())
    two = Memory(settings, embedder=FakeEmbedder())
    one.add([{"role": "user", "content": f"heron sighting number {i}"} for i in range(10)], user_id="u")
    assert one._vectors.wait_for_copy(30)
    other = two.add("heron nest by the river", user_id="u").results[0].id
    # The copy is stale and large: this search is answered by LanceDB, and sees the new row.
    assert other in {h.id for h in one.search("heron nest river", user_id="u").results}
    assert one._vectors.wait_for_copy(30)
    copy = one._vectors._cache
    assert copy is not None and copy.version == int(one._vectors.table.version)
    assert other in {h.id for h in one.search("heron nest river", user_id="u").results}
    one.close()
    two.close()
