"""KuzuGraphStore on a real Kùzu (or Ladybug) database in tmp_path, and the graph helpers that need
no LLM.

Every store test runs on each installed driver (``graph_driver``). Kùzu and Ladybug cannot both
load in one process (see ``mem0_mcp.graph.kuzu_db``), so this process runs them on
``MEM0_MCP_TEST_GRAPH_DRIVER`` (default kuzu) and ``test_store_tests_under_the_other_driver`` runs
this file again in a child process on the other one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mem0_mcp.errors import ConfigError, InvalidInputError, StoreError
from mem0_mcp.graph import kuzu_db
from mem0_mcp.graph.export import to_dot, to_graphml
from mem0_mcp.graph.kuzu_db import DRIVERS, GraphDriver
from mem0_mcp.graph.kuzu_store import KuzuGraphStore
from mem0_mcp.graph.logged_store import LoggedGraphStore
from mem0_mcp.graph.store import open_graph_store
from mem0_mcp.graph.validation import check_read_only
from mem0_mcp.models import GraphExport, Scope
from tests.support.engine import make_settings
from tests.support.server import REPO

ALICE = Scope(user_id="alice")
BOB = Scope(user_id="bob")
NOW = "2026-01-01T00:00:00.000000Z"


def vec(i: int, dim: int = 8) -> np.ndarray:
    return np.eye(dim, dtype=np.float32)[i % dim]


HERE_DRIVER = os.environ.get("MEM0_MCP_TEST_GRAPH_DRIVER", "kuzu")
INSTALLED = [d for d, (module, _) in DRIVERS.items() if importlib.util.find_spec(module) is not None]


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> GraphDriver:
    name: GraphDriver = request.param
    if name not in INSTALLED:
        pytest.skip(f"graph_driver={name}: not installed (pip install {DRIVERS[name][1]})")
    if name != HERE_DRIVER:
        pytest.skip(f"graph_driver={name} runs in a child process (one driver per process)")
    return name


@pytest.fixture
def store(tmp_path: Path, driver: GraphDriver) -> KuzuGraphStore:
    return KuzuGraphStore(tmp_path / "graph.kuzu", driver=driver)


def test_reads_before_any_write_are_empty(store: KuzuGraphStore) -> None:
    assert store.counts() == {"entities": 0, "relations": 0}
    assert store.similar_entities(ALICE, vec(0), 3, exact=False) == []
    assert store.relations(ALICE, ["x"]) == []
    assert not store.path.exists()


def test_schema_created_and_reopened(tmp_path: Path, store: KuzuGraphStore, driver: GraphDriver) -> None:
    a = store.create_entity(ALICE, "Alice", "alice", "person", vec(0), NOW)
    b = store.create_entity(ALICE, "Acme", "acme", "organization", vec(1), NOW)
    store.create_relation(ALICE, a.id, "works_at", b.id, ["m1"], NOW)
    again = KuzuGraphStore(tmp_path / "graph.kuzu", driver=driver)
    assert again.counts() == {"entities": 2, "relations": 1}
    [rel] = again.relations(ALICE, [a.id])
    assert (rel.source, rel.relation, rel.destination, rel.sources) == ("Alice", "works_at", "Acme", ["m1"])
    assert rel.valid_from == NOW and rel.invalidated_at is None
    # The embedding width is fixed by the first write; another width is refused, not mixed.
    with pytest.raises(StoreError, match="rebuild"):
        again.create_entity(ALICE, "Zed", "zed", "person", np.ones(16, dtype=np.float32), NOW)
    # Each operation opened and closed the database: nothing stays open between calls.
    assert not store.is_open and not again.is_open
    assert store.opens >= 3


def test_same_name_in_two_scopes_stays_two_entities(store: KuzuGraphStore) -> None:
    a1 = store.create_entity(ALICE, "Paris", "paris", "city", vec(0), NOW)
    a2 = store.create_entity(BOB, "Paris", "paris", "city", vec(0), NOW)
    assert a1.id != a2.id
    assert store.entities_by_name(ALICE, ["paris"])["paris"].id == a1.id
    assert store.entities_by_name(BOB, ["paris"])["paris"].id == a2.id
    assert [e.id for e in store.similar_entities(BOB, vec(0), 5, exact=False)] == [a2.id]
    assert [e.id for e in store.text_entities(ALICE, "paris", 5)] == [a1.id]
    # An agent's entity is its own, but a user-wide read sees it too.
    agent = Scope(user_id="alice", agent_id="bot")
    a3 = store.create_entity(agent, "Paris", "paris", "city", vec(0), NOW)
    assert store.entities_by_name(ALICE, ["paris"])["paris"].id == a1.id
    assert {e.id for e in store.named(ALICE, "paris")} == {a1.id, a3.id}
    assert store.delete_scope(BOB) == 1
    assert {e.id for e in store.named(ALICE, "paris")} == {a1.id, a3.id}


INJECTION = "x'}) MATCH (n) DETACH DELETE n // \" ; DROP TABLE Entity; $u"


def test_cypher_injection_string_is_just_a_name(store: KuzuGraphStore) -> None:
    victim = store.create_entity(BOB, "Bob", "bob", "person", vec(1), NOW)
    evil = store.create_entity(ALICE, INJECTION, INJECTION.casefold(), "person", vec(0), NOW)
    other = store.create_entity(ALICE, "Acme", "acme", "organization", vec(2), NOW)
    store.create_relation(ALICE, evil.id, INJECTION, other.id, [INJECTION], NOW)
    assert store.entities_by_name(ALICE, [INJECTION.casefold()])[INJECTION.casefold()].name == INJECTION
    assert [e.id for e in store.text_entities(ALICE, INJECTION, 5)] == [evil.id]
    assert store.named(ALICE, INJECTION.casefold())[0].id == evil.id
    assert store.forget_source(INJECTION) == 1
    assert store.entities_by_name(BOB, ["bob"])["bob"].id == victim.id
    assert store.counts()["entities"] == 1  # the orphaned pair went, Bob stayed


def test_name_words_match_whole_words_only(store: KuzuGraphStore) -> None:
    for i, name in enumerate(["Anna", "Ann Smith", "Acme Corp", "Hannover"]):
        store.create_entity(ALICE, name, name.casefold(), "thing", vec(i), NOW)
    hits = store.text_entities(ALICE, "Where does ann work? At ACME?", 5)
    assert [(e.name, e.score) for e in hits] == [("Ann Smith", 0.5), ("Acme Corp", 0.5)] or [
        (e.name, e.score) for e in hits
    ] == [("Acme Corp", 0.5), ("Ann Smith", 0.5)]
    assert store.text_entities(ALICE, "what is it about", 5) == []  # stop words only


def test_aliases_sources_invalidate_and_orphans(store: KuzuGraphStore) -> None:
    a = store.create_entity(ALICE, "Alice", "alice", "person", vec(0), NOW)
    g = store.create_entity(ALICE, "Google", "google", "organization", vec(1), NOW)
    z = store.create_entity(ALICE, "Zurich", "zurich", "city", vec(2), NOW)
    store.add_alias(g.id, "alphabet")
    store.add_alias(g.id, "alphabet")
    assert store.entities_by_name(ALICE, ["alphabet"])["alphabet"].aliases == ["google", "alphabet"]
    works = store.create_relation(ALICE, a.id, "works_at", g.id, ["m1"], NOW)
    located = store.create_relation(ALICE, g.id, "located_in", z.id, ["m1", "m2"], NOW)
    store.add_sources(works.id, ["m3", "m1"])
    assert store.find_relation(a.id, "works_at", g.id).sources == ["m1", "m3"]  # type: ignore[union-attr]
    store.invalidate(works.id, "2026-02-01T00:00:00.000000Z", "moved on")
    assert store.find_relation(a.id, "works_at", g.id) is None
    [old] = [r for r in store.relations(ALICE, [a.id], include_invalid=True) if r.id == works.id]
    assert old.invalidated_at == "2026-02-01T00:00:00.000000Z" and old.invalidated_reason == "moved on"
    assert store.relations(ALICE, [a.id]) == []
    # Forgetting m1: located_in keeps m2, works_at keeps m3; nothing deleted.
    assert store.forget_source("m1") == 0
    assert store.relations(ALICE, [g.id], include_invalid=True)
    assert store.forget_source("m2") == 1  # located_in had only m2 left
    assert store.entities_by_name(ALICE, ["zurich"]) == {}
    assert located.id not in {r.id for r in store.relations(ALICE, [g.id], include_invalid=True)}


def test_two_hops_and_path(store: KuzuGraphStore) -> None:
    names = ["alice", "acme", "berlin", "germany", "europe"]
    ents = [store.create_entity(ALICE, n.title(), n, "thing", vec(i), NOW) for i, n in enumerate(names)]
    for i, rel in enumerate(["works_at", "located_in", "city_of", "part_of"]):
        store.create_relation(ALICE, ents[i].id, rel, ents[i + 1].id, [f"m{i}"], NOW)
    one = store.relations(ALICE, [ents[0].id], depth=1)
    two = store.relations(ALICE, [ents[0].id], depth=2)
    assert [r.relation for r in one] == ["works_at"]
    assert {r.relation for r in two} == {"works_at", "located_in"}
    path = store.find_path(ALICE, ents[0].id, ents[3].id, 3)
    assert [r.relation for r in path] == ["works_at", "located_in", "city_of"]
    assert store.find_path(ALICE, ents[0].id, ents[4].id, 3) == []
    assert store.find_path(BOB, ents[0].id, ents[3].id, 3) == []
    # Paths go either way along relations, and never through an invalidated one.
    assert len(store.find_path(ALICE, ents[3].id, ents[0].id, 3)) == 3
    store.invalidate(path[1].id, NOW, None)
    assert store.find_path(ALICE, ents[0].id, ents[3].id, 6) == []


def test_read_query_runs_read_only(store: KuzuGraphStore) -> None:
    store.create_entity(ALICE, "Alice", "alice", "person", vec(0), NOW)
    rows = store.read_query("MATCH (e:Entity) RETURN e.name AS name", None, 10)
    assert rows == [{"name": "Alice"}]
    # Even if a write slipped past the checker, the read-only open refuses it.
    with pytest.raises(StoreError):
        store.read_query("MATCH (e:Entity) SET e.name = 'x' RETURN e.name", None, 10)
    assert store.named(ALICE, "alice")[0].name == "Alice"


@pytest.mark.parametrize(
    "cypher",
    [
        "CREATE (e:Entity {id: 'x'})",
        "MATCH (e:Entity) SET e.name = 'x'",
        "match (e) detach delete e",
        "MATCH (e) REMOVE e.name RETURN e",
        "MERGE (e:Entity {id: 'x'})",
        "DROP TABLE Entity",
        "ALTER TABLE Entity ADD x INT",
        "COPY Entity FROM 'x.csv'",
        "LOAD EXTENSION fts",
        "INSTALL httpfs",
        "ATTACH 'x' AS y (dbtype kuzu)",
        "CALL CREATE_FTS_INDEX('Entity', 'i', ['name'])",
        "CALL DROP_FTS_INDEX('Entity', 'entity_names')",
        "MATCH (e) RETURN e; MATCH (n) DELETE n",
        "MATCH (e) RETURN e /* */ ; CREATE (x:Entity {id: 'y'})",
        "",
    ],
)
def test_write_clauses_refused(cypher: str) -> None:
    with pytest.raises(InvalidInputError):
        check_read_only(cypher)


def test_read_queries_accepted_even_with_keywords_in_strings() -> None:
    check_read_only("MATCH (e:Entity) WHERE e.name = 'CREATE; DELETE' RETURN e.name // set")
    check_read_only("CALL SHOW_TABLES() RETURN *")
    check_read_only("MATCH (a)-[r:RELATES]->(b) RETURN a.name, r.relation, b.name LIMIT 5;")


def test_export_formats() -> None:
    graph = GraphExport.model_validate(
        {
            "scope": {"user_id": "alice"},
            "nodes": [
                {"id": "1", "name": 'A & "B" <c>', "type": "person", "created_at": NOW},
                {"id": "2", "name": "Acme", "type": "organization", "created_at": NOW},
            ],
            "edges": [
                {
                    "id": "r",
                    "source": 'A & "B" <c>',
                    "destination": "Acme",
                    "source_id": "1",
                    "destination_id": "2",
                    "relation": "works_at",
                    "created_at": NOW,
                    "valid_from": NOW,
                    "invalidated_at": NOW,
                    "sources": ["m1"],
                }
            ],
        }
    )
    xml = to_graphml(graph)
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert len(root.findall(".//g:node", ns)) == 2 and len(root.findall(".//g:edge", ns)) == 1
    assert 'A & "B" <c>' in [d.text for d in root.iter("{http://graphml.graphdrawing.org/xmlns}data")]
    dot = to_dot(graph)
    assert dot.startswith("digraph") and json.dumps('A & "B" <c> (person)') in dot and "dashed" in dot


def test_optional_hnsw_index(tmp_path: Path, driver: GraphDriver) -> None:
    """Off by default (slower than the exact scan at 10k entities); when on, it is built, kept up
    to date by writes, and falls back to the exact scan when the scope filter leaves too few.
    Ladybug ships no extension (``LOAD EXTENSION vector`` wants an ``INSTALL`` download): the
    index stays off and the exact scan answers."""
    store = KuzuGraphStore(tmp_path / "graph.kuzu", vector_index=True, driver=driver)
    ents = [store.create_entity(ALICE, f"n{i}", f"n{i}", "thing", vec(i), NOW) for i in range(6)]
    store.create_entity(BOB, "b", "b", "thing", vec(2), NOW)
    hits = store.similar_entities(ALICE, vec(2), 1, exact=False)
    assert [h.id for h in hits] == [ents[2].id] and hits[0].score == pytest.approx(1.0)
    assert [h.name for h in store.similar_entities(BOB, vec(2), 3, exact=True)] == ["b"]
    if driver == "kuzu":
        assert store.db.vector_index  # Kùzu 0.11.3 bundles the extension
    if store.db.vector_index:
        rows = store.read_query("CALL SHOW_INDEXES() RETURN index_name AS name", None, 10)
        assert {"name": "entity_vectors"} in rows


# ---------------------------------------------------------------- the driver setting


def test_a_missing_driver_package_is_a_config_error_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(kuzu_db.DRIVERS, "ladybug", ("mem0_mcp_no_such_module", "ladybug"))
    settings = make_settings(tmp_path / "data", graph_enabled=True, graph_driver="ladybug")
    with pytest.raises(ConfigError) as info:
        open_graph_store(settings)
    message = str(info.value)
    assert "graph_driver=ladybug" in message and "pip install ladybug" in message and "\n" not in message


def test_the_setting_reaches_the_store(tmp_path: Path, driver: GraphDriver) -> None:
    store = open_graph_store(make_settings(tmp_path / "data", graph_enabled=True, graph_driver=driver))
    assert isinstance(store, LoggedGraphStore) and store.view is not None
    assert store.view.db.driver == driver
    store.create_entity(ALICE, "Alice", "alice", "person", vec(0), NOW)
    assert store.counts() == {"entities": 1, "relations": 0}
    assert store.read_query("MATCH (e:Entity) RETURN e.name AS n", None, 5) == [{"n": "Alice"}]
    store.close()


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("other", [d for d in DRIVERS if d != HERE_DRIVER])
def test_store_tests_under_the_other_driver(other: str) -> None:
    """This file again, in a child process on the driver this process cannot load."""
    if other not in INSTALLED:
        pytest.skip(f"graph_driver={other}: not installed (pip install {DRIVERS[other][1]})")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            __file__,
            "-k",
            "not other_driver and not refused",
        ],
        env=_child_env(MEM0_MCP_TEST_GRAPH_DRIVER=other),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "passed" in proc.stdout


_WRITE = """
import sys
import numpy as np
from pathlib import Path
from mem0_mcp.graph.kuzu_store import KuzuGraphStore
from mem0_mcp.graph.logged_store import LoggedGraphStore
from mem0_mcp.models import Scope
store = KuzuGraphStore(Path(sys.argv[1]) / "graph.kuzu", driver=sys.argv[2])
alice, v = Scope(user_id="alice"), np.eye(8, dtype=np.float32)
a = store.create_entity(alice, "Alice", "alice", "person", v[0], "t")
b = store.create_entity(alice, "Acme", "acme", "thing", v[1], "t")
store.create_relation(alice, a.id, "works_at", b.id, ["explicit"], "t")
"""


@pytest.mark.slow
@pytest.mark.parametrize(("writer", "reader"), [("kuzu", "ladybug"), ("ladybug", "kuzu")])
def test_a_graph_written_by_one_driver_is_refused_by_the_other_in_one_line(
    writer: str, reader: str, tmp_path: Path
) -> None:
    """Neither opens the other's database file; the error names graph_driver and the way out."""
    if not {writer, reader} <= set(INSTALLED):
        pytest.skip("needs both kuzu and ladybug installed")
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(
        [sys.executable, "-c", _WRITE, str(data), writer], env=_child_env(), check=True, timeout=120
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mem0_mcp.cli.main", "graph", "export", "--user-id", "alice"],
        env=_child_env(
            MEM0_MCP_DATA_DIR=str(data), MEM0_MCP_GRAPH_ENABLED="true", MEM0_MCP_GRAPH_DRIVER=reader
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.strip()]
    assert f"graph_driver={reader}" in line and "mem0-mcp graph rebuild" in line, line
    # The driver that wrote it still reads it.
    proc = subprocess.run(
        [sys.executable, "-m", "mem0_mcp.cli.main", "graph", "export", "--user-id", "alice"],
        env=_child_env(
            MEM0_MCP_DATA_DIR=str(data), MEM0_MCP_GRAPH_ENABLED="true", MEM0_MCP_GRAPH_DRIVER=writer
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [e["relation"] for e in json.loads(proc.stdout)["edges"]] == ["works_at"]
