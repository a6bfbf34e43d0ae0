"""The graph on object storage (#17 item 5): each node derives its own graph from the changes
every node publishes to the shared feed. Moto S3 emulator, two "nodes" (separate data dirs, one
store URI), the engine with the fake embedder; relations written without an LLM (an agent's
``relations`` and ``add_relation``), so no model is needed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mem0_mcp.engine.memory import Memory
from mem0_mcp.models import Scope, StatedRelation
from tests.support.engine import FakeEmbedder, make_settings

REFRESH = 0.3
ALICE = Scope(user_id="alice")


def node(data_dir: Path, uri: str) -> Memory:
    settings = make_settings(data_dir, store_uri=uri, store_refresh_seconds=REFRESH, graph_enabled="auto")
    return Memory(settings, embedder=FakeEmbedder())


def eventually(check: Callable[[], bool], timeout: float = REFRESH * 4 + 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not seen within the bound"
        time.sleep(0.05)


def relations_of(mem: Memory, name: str) -> set[tuple[str, str, str]]:
    assert mem.graph is not None
    view = mem.graph.entity(name, ALICE)
    return {(r.source, r.relation, r.destination) for r in view.relations if r.invalidated_at is None}


def test_a_node_sees_the_graph_another_node_wrote(s3_uri: str, tmp_path: Path) -> None:
    a, b = node(tmp_path / "a", s3_uri), node(tmp_path / "b", s3_uri)
    try:
        sister = StatedRelation(source="user", relationship="has_sister", destination="Lena")
        added = a.add("Has a sister named Lena", user_id="alice", infer=False, relations=[sister])
        job = StatedRelation(source="Lena", relationship="works_as", destination="architect")
        answer = a.add("Lena designs bridges in Vienna", user_id="alice", infer=False, relations=[job])
        assert a.graph is not None
        a.graph.add_relation("Lena", "lives_in", "Vienna", ALICE)
        want = {
            ("alice", "has_sister", "Lena"),
            ("Lena", "works_as", "architect"),
            ("Lena", "lives_in", "Vienna"),
        }
        assert relations_of(a, "Lena") == want
        # Node b never extracted anything: it applies a's published changes.
        eventually(lambda: relations_of(b, "Lena") == want)
        found = b.graph.entity("Lena", ALICE)  # type: ignore[union-attr]
        sources = {r.relation: r.sources for r in found.relations}
        assert sources["works_as"] == [answer.results[0].id]
        # b's search follows them too: "my sister" names no one.
        hits = b.search("What job does my sister have?", user_id="alice", threshold=0.0).results
        assert hits[0].id == answer.results[0].id
        # Deletes travel the same way: a memory deleted on b leaves a's graph too.
        b.delete(added.results[0].id)
        eventually(lambda: ("alice", "has_sister", "Lena") not in relations_of(a, "Lena"))
        assert b.graph is not None
        assert b.graph.delete_relation("Lena", "lives_in", "Vienna", ALICE) == 1
        eventually(lambda: ("Lena", "lives_in", "Vienna") not in relations_of(a, "Lena"))
    finally:
        a.close()
        b.close()


def test_a_new_node_derives_the_whole_graph_from_the_feed(s3_uri: str, tmp_path: Path) -> None:
    a = node(tmp_path / "a", s3_uri)
    try:
        for i in range(5):
            rel = StatedRelation(source="user", relationship="owns", destination=f"Pet {i}")
            a.add(f"Owns pet number {i}", user_id="alice", infer=False, relations=[rel])
    finally:
        a.close()
    late = node(tmp_path / "late", s3_uri)
    try:
        eventually(lambda: len(relations_of(late, "alice")) == 5)
        # Applied once: a restart of the node reads on from its cursor, nothing twice.
        late.close()
        late = node(tmp_path / "late", s3_uri)
        time.sleep(REFRESH * 3)
        assert len(relations_of(late, "alice")) == 5
    finally:
        late.close()


def test_a_reset_reaches_every_node(s3_uri: str, tmp_path: Path) -> None:
    a, b = node(tmp_path / "a", s3_uri), node(tmp_path / "b", s3_uri)
    try:
        assert a.graph is not None
        a.graph.add_relation("alice", "knows", "Bob", ALICE)
        eventually(lambda: relations_of(b, "Bob") == {("alice", "knows", "Bob")})
        b.reset()
        eventually(lambda: relations_of(a, "Bob") == set())
    finally:
        a.close()
        b.close()
