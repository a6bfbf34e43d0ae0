"""The graph store every process uses: an in-memory copy following the shared graph log, with Kùzu
as its view. Real SQLite and Kùzu in tmp_path; "processes" are separate stores on one data dir,
and real subprocesses where it matters."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mem0_mcp.errors import StoreError
from mem0_mcp.graph.kuzu_store import KuzuGraphStore
from mem0_mcp.graph.logged_store import LoggedGraphStore
from mem0_mcp.graph.store import GraphStore, open_graph_store
from mem0_mcp.models import GraphRelation, Scope
from tests.support.engine import make_settings

ALICE = Scope(user_id="alice")
BOB = Scope(user_id="bob")
ALICE_AGENT = Scope(user_id="alice", agent_id="helper")
NOW = "2026-01-01T00:00:00.000000Z"
REPO = Path(__file__).resolve().parents[1]


def vec(i: int, dim: int = 8) -> np.ndarray:
    return np.eye(dim, dtype=np.float32)[i % dim] + 0.01 * i


def open_store(data_dir: Path) -> LoggedGraphStore:
    store = open_graph_store(make_settings(data_dir))
    assert isinstance(store, LoggedGraphStore)
    return store


@pytest.fixture
def store(tmp_path: Path) -> LoggedGraphStore:
    s = open_store(tmp_path)
    yield s  # type: ignore[misc]
    s.close()


def triples(rels: list[GraphRelation]) -> set[tuple[str, str, str, bool, tuple[str, ...]]]:
    return {
        (r.source, r.relation, r.destination, r.invalidated_at is None, tuple(sorted(r.sources)))
        for r in rels
    }


def test_reads_before_any_write_are_empty(store: LoggedGraphStore, tmp_path: Path) -> None:
    assert store.counts() == {"entities": 0, "relations": 0}
    assert store.similar_entities(ALICE, vec(0), 3, exact=False) == []
    assert store.text_entities(ALICE, "alice", 3) == []
    assert store.relations(ALICE, ["x"]) == []
    assert store.find_path(ALICE, "x", "y", 3) == []
    assert not (tmp_path / "graph.kuzu").exists()


def test_a_second_process_sees_every_write_at_its_next_read(tmp_path: Path) -> None:
    one, two = open_store(tmp_path), open_store(tmp_path)
    a = one.create_entity(ALICE, "Alice", "alice", "person", vec(0), NOW)
    g = one.create_entity(ALICE, "Google", "google", "organization", vec(1), NOW)
    works = one.create_relation(ALICE, a.id, "works_at", g.id, ["m1"], NOW)
    assert two.entities_by_name(ALICE, ["alice"])["alice"].id == a.id
    assert [r.id for r in two.relations(ALICE, [a.id])] == [works.id]
    two.add_sources(works.id, ["m2"])
    two.invalidate(works.id, "2026-02-01", "moved")
    assert one.find_relation(a.id, "works_at", g.id) is None
    [old] = one.relations(ALICE, [a.id], include_invalid=True)
    assert old.sources == ["m1", "m2"] and old.invalidated_at == "2026-02-01"
    assert one.forget_source("m1") == 0 and two.forget_source("m2") == 1
    assert one.counts() == {"entities": 0, "relations": 0}  # orphans went with it
    one.close()
    two.close()


def test_a_write_burst_resolves_names_against_every_process(tmp_path: Path) -> None:
    """Two stores each check "is Paris there?" and create it inside their write burst: the log's
    write lock makes the second see the first's entity, so there is one Paris, not two."""
    one, two = open_store(tmp_path), open_store(tmp_path)
    for s in (one, two, one):
        with s.burst(write=True):
            if not s.entities_by_name(ALICE, ["paris"]):
                s.create_entity(ALICE, "Paris", "paris", "city", vec(2), NOW)
    assert one.counts()["entities"] == 1 == two.counts()["entities"]
    one.close()
    two.close()


def test_a_failed_burst_leaves_no_trace_in_any_copy(store: LoggedGraphStore, tmp_path: Path) -> None:
    kept = store.create_entity(ALICE, "Kept", "kept", "thing", vec(0), NOW)
    with pytest.raises(RuntimeError), store.burst(write=True):
        store.create_entity(ALICE, "Lost", "lost", "thing", vec(1), NOW)
        assert store.entities_by_name(ALICE, ["lost"])  # seen inside the burst
        raise RuntimeError("the graph update failed halfway")
    assert store.entities_by_name(ALICE, ["lost", "kept"]).keys() == {"kept"}
    other = open_store(tmp_path)
    assert [e.id for e in other.named(ALICE, "kept")] == [kept.id]
    assert other.counts()["entities"] == 1
    other.close()


def test_scopes_names_words_vectors_and_paths(store: LoggedGraphStore) -> None:
    names = ["alice", "acme corp", "berlin", "germany", "europe"]
    ents = [store.create_entity(ALICE, n.title(), n, "thing", vec(i), NOW) for i, n in enumerate(names)]
    mine = store.create_entity(ALICE_AGENT, "Acme Corp", "acme corp", "thing", vec(1), NOW)
    theirs = store.create_entity(BOB, "Acme Corp", "acme corp", "thing", vec(1), NOW)
    for i, rel in enumerate(["works_at", "located_in", "city_of", "part_of"]):
        store.create_relation(ALICE, ents[i].id, rel, ents[i + 1].id, [f"m{i}"], NOW)
    # exact scope for resolution, AND of ids for reads
    assert store.entities_by_name(ALICE, ["acme corp"])["acme corp"].id == ents[1].id
    assert store.entities_by_name(ALICE_AGENT, ["acme corp"])["acme corp"].id == mine.id
    assert {e.id for e in store.named(ALICE, "acme corp")} == {ents[1].id, mine.id}
    assert theirs.id not in {e.id for e in store.named(ALICE, "acme corp")}
    near = store.similar_entities(ALICE, vec(1), 2, exact=True)
    assert near[0].id == ents[1].id and near[0].score == pytest.approx(1.0, abs=1e-5)
    assert [e.id for e in store.text_entities(ALICE, "what does acme make?", 5)][:1] in (
        [ents[1].id],
        [mine.id],
    )
    assert store.text_entities(ALICE, "acme", 5)[0].score == 0.5  # one word of two
    assert store.text_entities(BOB, "corp", 5)[0].id == theirs.id
    one = store.relations(ALICE, [ents[0].id], depth=1)
    two = store.relations(ALICE, [ents[0].id], depth=2)
    assert [r.relation for r in one] == ["works_at"]
    assert {r.relation for r in two} == {"works_at", "located_in"}
    assert store.relations(BOB, [ents[0].id]) == []
    path = store.find_path(ALICE, ents[0].id, ents[3].id, 3)
    assert [r.relation for r in path] == ["works_at", "located_in", "city_of"]
    assert len(store.find_path(ALICE, ents[3].id, ents[0].id, 3)) == 3
    assert store.find_path(BOB, ents[0].id, ents[3].id, 3) == []
    store.invalidate(path[1].id, NOW, None)
    assert store.find_path(ALICE, ents[0].id, ents[3].id, 6) == []
    entities, relations = store.all_of(ALICE)
    assert len(entities) == 6 and len(relations) == 4
    assert store.delete_scope(BOB) == 1
    assert store.counts() == {"entities": 6, "relations": 4}


def _random_ops(store: GraphStore, seed: int) -> None:
    """The same seeded sequence of graph writes on any store (ids are looked up by name)."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(12)]
    scopes = [ALICE, BOB]
    for step in range(120):
        # Distinct times: both stores order ties by their own random ids.
        now = f"2026-01-01T{step // 60:02d}:{step % 60:02d}:00.000000Z"
        scope = rng.choice(scopes)
        kind = rng.random()
        with store.burst(write=True):
            known = store.entities_by_name(scope, names)
            if kind < 0.35 or len(known) < 2:
                name = rng.choice(names)
                if name not in known:
                    store.create_entity(scope, name.upper(), name, "thing", vec(int(name[1:])), now)
            elif kind < 0.7:
                a, b = rng.sample(sorted(known), 2)
                rel = rng.choice(["knows", "likes"])
                found = store.find_relation(known[a].id, rel, known[b].id)
                if found is None:
                    store.create_relation(scope, known[a].id, rel, known[b].id, [f"m{step % 7}"], now)
                else:
                    store.add_sources(found.id, [f"m{step % 5}"])
            elif kind < 0.8:
                a = rng.choice(sorted(known))
                rels = store.relations(scope, [known[a].id])
                if rels:
                    store.invalidate(rels[0].id, f"2026-03-{step % 28 + 1:02d}", "contradicted")
            elif kind < 0.88:
                a = rng.choice(sorted(known))
                rels = store.relations(scope, [known[a].id], include_invalid=True)
                if rels:
                    store.delete_relation(rels[-1].id)
            elif kind < 0.95:
                store.forget_source(f"m{rng.randrange(7)}")
            else:
                store.add_alias(known[rng.choice(sorted(known))].id, f"alias{step % 3}")


VIEW_RELATIONS = (
    "MATCH (s:Entity)-[r:RELATES]->(d:Entity) RETURN s.name AS source, r.relation AS relation, "
    "d.name AS destination, r.invalidated_at AS invalidated_at, r.sources AS sources"
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_mix_of_every_write_reads_the_same_in_memory_in_a_new_process_and_in_kuzu(
    tmp_path: Path, seed: int
) -> None:
    """A seeded mix of every write; a new process replaying the log and the Kùzu view
    (materialized from it) hold the same graph as the writer's copy. (Run on the Kùzu store this
    replaces, the same mix left a relation behind after forget_source deleted it: seed 1.)"""
    logged = open_store(tmp_path)
    _random_ops(logged, seed)
    again = open_store(tmp_path)
    for scope in (ALICE, BOB):
        ents, rels = logged.all_of(scope)
        ents2, rels2 = again.all_of(scope)
        assert [(e.id, e.aliases) for e in ents] == [(e.id, e.aliases) for e in ents2]
        assert [r.model_dump() for r in rels] == [r.model_dump() for r in rels2]
    everything = [r for scope in (ALICE, BOB) for r in logged.all_of(scope)[1]]
    view = logged.read_query(VIEW_RELATIONS, None, 10_000)
    assert {
        (
            v["source"],
            v["relation"],
            v["destination"],
            v["invalidated_at"] is None,
            tuple(sorted(v["sources"])),
        )
        for v in view
    } == triples(everything)
    assert len(view) == len(everything) == logged.counts()["relations"]
    logged.close()
    again.close()


def test_the_kuzu_view_follows_deletes_and_resets_and_rebuilds_when_lost(
    store: LoggedGraphStore, tmp_path: Path
) -> None:
    a = store.create_entity(ALICE, "Alice", "alice", "person", vec(0), NOW)
    b = store.create_entity(ALICE, "Bob", "bob", "person", vec(1), NOW)
    r = store.create_relation(ALICE, a.id, "knows", b.id, ["m1"], NOW)
    count = "MATCH (e:Entity) RETURN count(e) AS n"
    assert store.read_query(count, None, 5) == [{"n": 2}]
    store.delete_relation(r.id)
    assert store.counts()["entities"] == 0  # orphans went too
    assert store.read_query(count, None, 5) == []  # an empty graph gives no rows
    c = store.create_entity(ALICE, "Carol", "carol", "person", vec(2), NOW)
    store.reset()
    assert store.read_query(count, None, 5) == []  # no tables after a reset: no rows
    assert store.counts() == {"entities": 0, "relations": 0}
    d = store.create_entity(ALICE, "Dan", "dan", "person", vec(3), NOW)
    assert store.read_query("MATCH (e:Entity) RETURN e.id AS id", None, 5) == [{"id": d.id}]
    assert c.id != d.id
    # Kùzu's files lost: the view is rebuilt from the log at the next sync.
    store.view.db.reset()  # type: ignore[union-attr]
    assert store.read_query("MATCH (e:Entity) RETURN e.name AS n", None, 5) == [{"n": "Dan"}]


def test_a_graph_written_before_the_log_moves_into_it_once(tmp_path: Path) -> None:
    old = KuzuGraphStore(tmp_path / "graph.kuzu", lock_path=tmp_path / "graph.lock")
    a = old.create_entity(ALICE, "Alice", "alice", "person", vec(0), NOW)
    g = old.create_entity(ALICE, "Google", "google", "organization", vec(1), NOW)
    old.add_alias(g.id, "alphabet")
    works = old.create_relation(ALICE, a.id, "works_at", g.id, ["m1"], NOW, valid_from="2025-05-01")
    old.invalidate(works.id, "2026-02-01", "left")
    first, second = open_store(tmp_path), open_store(tmp_path)
    assert first.log.head() == 3  # two entities and one relation, imported once
    [rel] = second.relations(ALICE, [a.id], include_invalid=True)
    assert (rel.id, rel.valid_from, rel.invalidated_at, rel.sources) == (
        works.id,
        "2025-05-01",
        "2026-02-01",
        ["m1"],
    )
    assert second.entities_by_name(ALICE, ["alphabet"])["alphabet"].id == g.id
    assert np.allclose(second.entity_vectors([a.id])[a.id], vec(0) / np.linalg.norm(vec(0)), atol=1e-6)
    assert first.read_query("MATCH ()-[r:RELATES]->() RETURN count(r) AS n", None, 5) == [{"n": 1}]
    first.close()
    second.close()


def test_a_read_only_log_reads_and_refuses_writes(tmp_path: Path) -> None:
    writer = open_store(tmp_path)
    writer.create_entity(ALICE, "Alice", "alice", "person", vec(0), NOW)
    writer.close()
    reader = open_graph_store(make_settings(tmp_path), read_only=True)
    assert reader.named(ALICE, "alice")
    with pytest.raises(StoreError, match="read-only"):
        reader.create_entity(ALICE, "Bob", "bob", "person", vec(1), NOW)
    reader.close()


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from mem0_mcp.graph.store import open_graph_store
    from mem0_mcp.models import Scope
    from tests.support.engine import make_settings

    data_dir, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = open_graph_store(make_settings(data_dir))
    scope = Scope(user_id="team")
    for i in range(n):
        with store.burst(write=True):
            names = [f"shared {i}", f"{who} {i}"]
            found = store.entities_by_name(scope, names)
            one = np.ones(4, "float32")
            ids = [(found.get(n) or store.create_entity(scope, n, n, "thing", one, "t")).id for n in names]
            store.create_relation(scope, ids[0], "knows", ids[1], [f"{who}-{i}"], "t")
    store.close()
    print("ok")
    """
)


@pytest.mark.slow
def test_three_processes_write_at_once_and_a_fourth_reads_everything(tmp_path: Path) -> None:
    """Writers in three real processes, each creating the same "shared i" entities as the others
    at the same moment: every relation is there once, every shared entity once, in the copy of a
    fourth process and in the Kùzu view. Three rounds, to give a race its chances."""
    n = 25
    for round_ in range(3):
        data_dir = tmp_path / f"round{round_}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(data_dir), who, str(n)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for who in ("a", "b", "c")
        ]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "ok", err
        reader = open_store(data_dir)
        entities, relations = reader.all_of(Scope(user_id="team"))
        assert len(relations) == 3 * n
        assert len({(r.source, r.destination) for r in relations}) == 3 * n
        assert sorted(e.name for e in entities if e.name.startswith("shared")) == sorted(
            f"shared {i}" for i in range(n)
        )
        assert len(entities) == 4 * n
        assert reader.read_query("MATCH ()-[r:RELATES]->() RETURN count(r) AS n", None, 5) == [{"n": 3 * n}]
        reader.close()


ACKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from mem0_mcp.graph.store import open_graph_store
    from mem0_mcp.models import Scope
    from tests.support.engine import make_settings

    store = open_graph_store(make_settings(Path(sys.argv[1])))
    scope, one = Scope(user_id="team"), np.ones(4, "float32")
    i = int(sys.argv[2])
    while True:
        with store.burst(write=True):
            a = store.create_entity(scope, f"from {i}", f"from {i}", "thing", one, "t")
            b = store.create_entity(scope, f"to {i}", f"to {i}", "thing", one, "t")
            store.create_relation(scope, a.id, "knows", b.id, [f"m{i}"], "t")
        print(i, flush=True)  # acknowledged: the burst committed
        i += 1
    """
)


@pytest.mark.slow
def test_a_killed_writer_loses_no_acknowledged_relation(tmp_path: Path) -> None:
    """kill -9 at random moments while a process writes relations: every relation it acknowledged
    is there afterwards, whole (both entities), and the Kùzu view agrees."""
    rng = random.Random(7)
    acked: set[int] = set()
    start = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", ACKER, str(tmp_path), str(start)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # started writing
        assert first.strip().isdigit()
        acked.add(int(first))
        time.sleep(rng.uniform(0.05, 0.4))
        proc.kill()
        out, _ = proc.communicate()
        acked |= {int(x) for x in out.split() if x.isdigit()}
        start = max(acked) + 1000  # names of the next run never collide with a half-written one
    store = open_store(tmp_path)
    entities, relations = store.all_of(Scope(user_id="team"))
    names = {(r.source, r.destination) for r in relations}
    assert {(f"from {i}", f"to {i}") for i in acked} <= names
    assert len(entities) == 2 * len(relations)  # no relation without its entities, no stray entity
    assert store.read_query("MATCH ()-[r:RELATES]->() RETURN count(r) AS n", None, 5) == [
        {"n": len(relations)}
    ]
    store.close()


SWITCH = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from pathlib import Path
    from mem0_mcp.graph.store import open_graph_store
    from mem0_mcp.models import Scope
    from tests.support.engine import make_settings

    data_dir, driver, write = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "write"
    store = open_graph_store(make_settings(data_dir, graph_driver=driver))
    alice, v = Scope(user_id="alice"), np.eye(8, dtype=np.float32)
    if write:
        a = store.create_entity(alice, "Alice", "alice", "person", v[0], "t")
        b = store.create_entity(alice, "Acme", "acme", "thing", v[1], "t")
        store.create_relation(alice, a.id, "works_at", b.id, ["explicit"], "t")
    rows = store.read_query("MATCH (s)-[r:RELATES]->(d) RETURN s.name AS s, d.name AS d", None, 5)
    print(json.dumps({"counts": store.counts(), "rows": rows}))
    store.close()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("writer", "reader"), [("kuzu", "ladybug"), ("ladybug", "kuzu")])
def test_switching_the_driver_keeps_the_graph_and_writes_the_view_anew(
    tmp_path: Path, writer: str, reader: str
) -> None:
    """The graph lives in the log: another graph_driver reads it as before, and the Cypher view the
    first driver wrote (which the second cannot open) is moved aside and written anew."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("kuzu", "ladybug")):
        pytest.skip("needs both kuzu and ladybug installed")
    runs = []
    for driver, what in ((writer, "write"), (reader, "read")):
        proc = subprocess.run(
            [sys.executable, "-c", SWITCH, str(tmp_path), driver, what],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if what == "read":
            assert "moved to" in proc.stderr and "written anew" in proc.stderr
    assert (
        runs[0]
        == runs[1]
        == {"counts": {"entities": 2, "relations": 1}, "rows": [{"s": "Alice", "d": "Acme"}]}
    )
    assert list(tmp_path.glob("graph.kuzu.unreadable-*"))
