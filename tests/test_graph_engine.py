"""Graph memory through the engine: real Kùzu + LanceDB in tmp_path, scripted LLM routed by prompt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mem0_mcp.cli.graph import memory_pages
from mem0_mcp.clock import now_iso
from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import InvalidInputError
from mem0_mcp.graph.rebuild import rebuild_graph
from mem0_mcp.llm.base import LLMError
from mem0_mcp.models import GraphRelation, Scope
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.graph_llm import CONTRADICTION, EXTRACTION, FACTS, RoutingLLM

ALICE = Scope(user_id="alice")


def triples(relations: list[GraphRelation]) -> set[tuple[str, str, str, str]]:
    return {(r.source, r.relation, r.destination, r.event or "") for r in relations}


@pytest.fixture
def llm() -> RoutingLLM:
    return RoutingLLM()


@pytest.fixture
def mem(tmp_path: Path, llm: RoutingLLM) -> Iterator[Memory]:
    m = Memory(make_settings(tmp_path / "data", graph_enabled=True), embedder=FakeEmbedder(), llm=llm)
    yield m
    m.close()


def test_verbatim_add_extracts_entities_and_relations(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph(
        [("I", "works_at", "Google"), ("Google", "located_in", "Zurich"), ("my", "sister_of", "Anna")],
        {"Google": "organization", "Zurich": "city"},
    )
    r = mem.add("I work at Google in Zurich. Anna is my sister.", user_id="alice")
    [event] = r.results
    assert triples(r.relations) == {
        ("alice", "works_at", "Google", "ADD"),
        ("Google", "located_in", "Zurich", "ADD"),
        ("alice", "sister_of", "Anna", "ADD"),
    }
    assert all(rel.sources == [event.id] for rel in r.relations)
    assert r.usage.llm_calls == 1 and not r.warnings
    # "I", "me", "my" all resolved to the scope's user: one entity.
    view = mem.graph.get_entity("alice", ALICE)
    assert [e["type"] for e in view["entities"]] == ["person"]
    assert set(view["neighbours"]) == {"Google", "Anna"}
    assert "alice" in llm.calls[0][1] and mem.stats().graph_enabled


def test_infer_add_runs_graph_beside_fact_extraction(mem: Memory, llm: RoutingLLM) -> None:
    llm.push(FACTS, {"facts": ["Works at Google"]})
    llm.graph([("I", "works_at", "Google")])
    r = mem.add([{"role": "user", "content": "I work at Google"}], user_id="alice", infer=True)
    assert r.inferred and [e.event for e in r.results] == ["ADD"]
    assert triples(r.relations) == {("alice", "works_at", "Google", "ADD")}
    assert r.relations[0].sources == [r.results[0].id]
    assert r.usage.llm_calls == 2
    assert {k for k, _ in llm.calls} == {FACTS, EXTRACTION}


def test_entity_merge_by_name_and_alias(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph([("alice", "works_at", "Acme Corp.")])
    mem.add("I work at Acme Corp.", user_id="alice")
    # Different case and punctuation: the same entity, nothing new; the relation gains a source.
    llm.graph([("Alice", "works_at", "ACME CORP")])
    r = mem.add("Alice works at ACME CORP", user_id="alice")
    assert triples(r.relations) == {("alice", "works_at", "Acme Corp", "NONE")}
    assert len(r.relations[0].sources) == 2
    # A new mention that embeds close to a stored entity merges into it and becomes an alias.
    mem.graph.merge_threshold = 0.7
    llm.graph([("alice", "likes", "Acme Corp Berlin")])
    mem.add("I like Acme Corp Berlin", user_id="alice")
    counts = mem.graph.store.counts()
    assert counts == {"entities": 2, "relations": 2}
    [acme] = mem.graph.get_entity("acme corp berlin", ALICE)["entities"]
    assert acme["name"] == "Acme Corp" and "acme corp berlin" in acme["aliases"]


def test_contradiction_invalidates_with_time_and_keeps_history(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph([("I", "works_at", "Google"), ("I", "likes", "pizza")])
    mem.add("I work at Google and like pizza", user_id="alice")
    llm.graph([("I", "works_at", "Siemens")])

    def retire_google(system: str) -> dict:
        line = next(x for x in system.splitlines() if '-works_at-> "Google"' in x)
        return {"invalidate": [{"id": int(line.split(":")[0]), "reason": "changed jobs"}, {"id": 7}]}

    llm.push(CONTRADICTION, retire_google)
    r = mem.add("I moved to Siemens", user_id="alice")
    assert triples(r.relations) == {
        ("alice", "works_at", "Siemens", "ADD"),
        ("alice", "works_at", "Google", "INVALIDATE"),
    }
    contradiction_prompt = next(s for k, s in llm.calls if k == CONTRADICTION)
    assert '"alice" -works_at-> "Google"' in contradiction_prompt
    assert '"alice" -likes-> "pizza"' in contradiction_prompt  # shown, not retired
    view = mem.graph.get_entity("alice", ALICE)
    rels = {(x["destination"], x.get("invalidated_at") is not None) for x in view["relations"]}
    assert rels == {("Siemens", False), ("Google", True), ("pizza", False)}
    google = next(x for x in view["relations"] if x["destination"] == "Google")
    assert google["invalidated_reason"] == "changed jobs" and google["invalidated_at"] >= google["valid_from"]
    # Search sees only valid relations.
    found = mem.search("where does alice work", user_id="alice").relations
    assert ("alice", "works_at", "Siemens") in {(x.source, x.relation, x.destination) for x in found}
    assert "Google" not in {x.destination for x in found}


def retire(destination: str, reason: str = "no longer true"):
    """A contradiction reply retiring the stored relation that ends at ``destination``."""

    def reply(system: str) -> dict:
        line = next(x for x in system.splitlines() if f'-> "{destination}"' in x)
        return {"invalidate": [{"id": int(line.split(":")[0]), "reason": reason}]}

    return reply


def test_valid_from_is_the_event_time_and_invalidation_when_the_contradiction_happened(
    mem: Memory, llm: RoutingLLM
) -> None:
    llm.graph([("I", "works_at", "Google")])
    first = mem.add("I work at Google", user_id="alice", timestamp="2024-01-10T09:00:00Z", infer=False)
    [google] = first.relations
    assert google.valid_from == "2024-01-10T09:00:00.000000Z"
    assert google.created_at > google.valid_from  # the write time stays: when it was recorded
    llm.graph([("I", "works_at", "Siemens")])
    llm.push(CONTRADICTION, retire("Google", "changed jobs"))
    second = mem.add("I moved to Siemens", user_id="alice", timestamp="2024-06-01", infer=False)
    by_dest = {r.destination: r for r in second.relations}
    assert by_dest["Siemens"].valid_from == "2024-06-01T00:00:00.000000Z"
    assert by_dest["Google"].invalidated_at == "2024-06-01T00:00:00.000000Z"
    stored = {r["destination"]: r for r in mem.graph.get_entity("alice", ALICE)["relations"]}
    assert stored["Google"]["invalidated_at"] == "2024-06-01T00:00:00.000000Z"
    assert stored["Google"]["valid_from"] == "2024-01-10T09:00:00.000000Z"
    # A fact that happened before a stored relation began does not retire it.
    llm.graph([("I", "works_at", "IBM")])
    llm.push(CONTRADICTION, retire("Siemens"))
    older = mem.add("I worked at IBM", user_id="alice", timestamp="2023-05-01", infer=False)
    assert "INVALIDATE" not in {r.event for r in older.relations}
    stored = {r["destination"]: r for r in mem.graph.get_entity("alice", ALICE)["relations"]}
    assert "invalidated_at" not in stored["Siemens"]


def test_as_of_answers_what_was_true_then(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph([("I", "works_at", "Google"), ("I", "likes", "pizza")])
    first = mem.add("I work at Google and like pizza", user_id="alice", timestamp="2020-01-01", infer=False)
    recorded = max(r.created_at for r in first.relations)
    time.sleep(0.01)
    llm.graph([("I", "works_at", "Siemens")])
    llm.push(CONTRADICTION, retire("Google"))
    mem.add("I moved to Siemens", user_id="alice", infer=False)  # no timestamp: it happened when it was added
    after = now_iso()
    graph = mem.graph

    def found(as_of: str | None) -> set[str]:
        return {r.destination for r in graph.find_relations("where does alice work", ALICE, 10, as_of=as_of)}

    def entity(as_of: str | None) -> set[str]:
        return {r["destination"] for r in graph.get_entity("alice", ALICE, as_of=as_of)["relations"]}

    assert found(None) == {"Siemens", "pizza"}
    assert found("2019-12-31") == set() and entity("2019-12-31") == set()  # before it happened
    # Valid since 2020 but recorded only now: not what was believed in 2021.
    assert found("2021-06-01") == set() and entity("2021-06-01") == set()
    assert graph.get_entity("alice", ALICE, as_of="2021-06-01")["entities"] == []
    assert found(recorded) == {"Google", "pizza"} and entity(recorded) == {"Google", "pizza"}
    assert found(after) == {"Siemens", "pizza"} and entity(after) == {"Siemens", "pizza"}
    # Without as_of the entity keeps its history, invalidated relations included.
    assert entity(None) == {"Google", "Siemens", "pizza"}
    # A bad value names the field and the fix.
    for call in (
        lambda: graph.find_relations("alice", ALICE, 5, as_of="last tuesday"),
        lambda: graph.get_entity("alice", ALICE, as_of="2024-13-01"),
    ):
        with pytest.raises(InvalidInputError, match=r"as_of.*ISO 8601"):
            call()


def test_update_rederives_the_memory_relations(mem: Memory, llm: RoutingLLM) -> None:
    llm.defaults[CONTRADICTION] = {"invalidate": []}
    llm.graph([("I", "works_at", "Google"), ("I", "lives_in", "Zurich")])
    mid = (
        mem.add("I work at Google in Zurich", user_id="alice", timestamp="2024-01-10", infer=False)
        .results[0]
        .id
    )
    llm.graph([("I", "lives_in", "Zurich")])
    other = mem.add("I live in Zurich", user_id="alice", infer=False).results[0].id
    llm.graph([("I", "works_at", "Siemens")])
    item = mem.update(mid, text="I work at Siemens")
    assert item.memory == "I work at Siemens" and not item.warnings
    assert triples(item.relations) == {("alice", "works_at", "Siemens", "ADD")}
    rels = {r["destination"]: r for r in mem.graph.get_entity("alice", ALICE)["relations"]}
    assert set(rels) == {"Siemens", "Zurich"}  # Google came only from the old text: gone
    assert rels["Siemens"]["sources"] == [mid]
    assert rels["Siemens"]["valid_from"] == "2024-01-10T00:00:00.000000Z"  # the memory's event time
    assert rels["Zurich"]["sources"] == [other]  # still said by the other memory
    assert mem.graph.store.entities_by_name(ALICE, ["google"]) == {}
    # Metadata only, or the same text: nothing to extract again.
    calls = llm.count(EXTRACTION)
    mem.update(mid, metadata={"k": 1})
    mem.update(mid, text="I work at Siemens")
    assert llm.count(EXTRACTION) == calls
    # A failed extraction is a warning; the update is stored.
    llm.push(EXTRACTION, LLMError("model overloaded"))
    failed = mem.update(mid, text="I work at Siemens in Munich")
    assert failed.memory == "I work at Siemens in Munich" == mem.get(mid).memory
    assert "graph" in failed.warnings[0] and "model overloaded" in failed.warnings[0]


def test_search_returns_relations_one_and_two_hops(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph(
        [("I", "works_at", "Acme"), ("Acme", "located_in", "Berlin"), ("Berlin", "capital_of", "Germany")]
    )
    mem.add("I work at Acme, in Berlin, the capital of Germany", user_id="alice")
    one = mem.search("Acme", user_id="alice", limit=10).relations
    assert {x.relation for x in one} == {"works_at", "located_in"}
    assert all((x.score or 0) > 0 for x in one)
    mem.graph.depth = 2
    two = mem.search("Acme", user_id="alice", limit=10).relations
    assert {x.relation for x in two} == {"works_at", "located_in", "capital_of"}
    # Ranked: the relations touching the matched entity come before the second hop.
    assert two[-1].relation == "capital_of"
    assert mem.search("Acme", user_id="bob").relations == []
    # A first-person query reaches the speaker's own entity without naming it.
    mine = mem.search("where do I work", user_id="alice").relations
    assert ("alice", "works_at", "Acme") in {(x.source, x.relation, x.destination) for x in mine}


def test_delete_propagates_to_relations_sourced_only_from_it(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph([("I", "works_at", "Acme"), ("I", "lives_in", "Berlin")])
    first = mem.add("I work at Acme and live in Berlin", user_id="alice").results[0].id
    llm.graph([("I", "lives_in", "Berlin")])
    second = mem.add("I live in Berlin", user_id="alice").results[0].id
    mem.delete(first)
    left = mem.graph.get_entity("alice", ALICE)["relations"]
    assert [(x["relation"], x["sources"]) for x in left] == [("lives_in", [second])]
    assert mem.graph.store.entities_by_name(ALICE, ["acme"]) == {}  # orphan removed
    mem.delete(second)
    assert mem.graph.store.counts() == {"entities": 0, "relations": 0}


def test_delete_all_clears_only_that_scope(mem: Memory, llm: RoutingLLM) -> None:
    for user in ("alice", "bob"):
        llm.graph([("I", "lives_in", "Paris")])
        mem.add("I live in Paris", user_id=user)
    # Same name, two scopes: two Paris entities.
    assert mem.graph.store.counts() == {"entities": 4, "relations": 2}
    mem.delete_all(user_id="alice")
    assert mem.graph.store.counts() == {"entities": 2, "relations": 1}
    assert mem.graph.get_entity("paris", Scope(user_id="bob"))["relations"]
    assert mem.graph.get_entity("paris", ALICE)["entities"] == []


def test_graph_failure_never_fails_the_add(mem: Memory, llm: RoutingLLM, monkeypatch) -> None:
    llm.push(EXTRACTION, LLMError("model overloaded"))
    r = mem.add("I work at Acme", user_id="alice")
    assert [e.event for e in r.results] == ["ADD"]
    assert r.relations == [] and "graph" in r.warnings[0] and "model overloaded" in r.warnings[0]

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mem.graph.store, "create_relation", broken)
    llm.graph([("I", "lives_in", "Berlin")])
    r = mem.add("I live in Berlin", user_id="alice")
    assert r.results[0].event == "ADD" and "disk full" in r.warnings[0]
    assert mem.get(r.results[0].id).memory == "I live in Berlin"
    # Graph failures in search and delete are logged, not raised.
    monkeypatch.setattr(mem.graph.store, "similar_entities", broken)
    monkeypatch.setattr(mem.graph.store, "forget_source", broken)
    assert mem.search("Berlin", user_id="alice").results
    assert mem.delete(r.results[0].id).deleted == 1


def test_graph_off_or_no_llm(tmp_path: Path) -> None:
    off = Memory(make_settings(tmp_path / "a"), embedder=FakeEmbedder(), llm=RoutingLLM())
    r = off.add("I work at Acme", user_id="alice")
    assert r.relations == [] and off.graph is None and not off.stats().graph_enabled
    off.close()
    no_llm = Memory(make_settings(tmp_path / "b", graph_enabled=True), embedder=FakeEmbedder())
    assert no_llm.add("I work at Acme", user_id="alice").relations == []
    # Explicit relations need no LLM.
    rel = no_llm.graph.add_relation("alice", "works at", "Acme", ALICE, destination_type="Organization")
    assert (rel["relation"], rel["event"], rel["destination_type"]) == ("works_at", "ADD", "organization")
    assert no_llm.graph.add_relation("Alice", "works_at", "acme", ALICE)["event"] == "NONE"
    assert no_llm.search("acme", user_id="alice").relations[0].destination == "Acme"
    assert no_llm.graph.delete_relation("alice", "works_at", "ACME", ALICE) == 1
    assert no_llm.graph.delete_relation("alice", "works_at", "ACME", ALICE) == 0
    no_llm.close()


def test_two_engines_on_one_data_dir_both_write_the_graph(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", graph_enabled=True)
    llms = [RoutingLLM(), RoutingLLM()]
    engines = [Memory(settings, embedder=FakeEmbedder(), llm=llm) for llm in llms]
    for e in engines:
        e.graph.merge_threshold = 2.0  # one-word names can collide in the hashed fake embedding
    n = 6
    for i in range(n):
        for k, llm in enumerate(llms):
            llm.graph([(f"person{k}_{i}", "knows", "alice")])
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(n):
                r = engines[k].add(f"person{k}_{i} knows alice", user_id="alice")
                assert not r.warnings, r.warnings
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # Both wrote through per-operation opens; the shared name resolved to one entity.
    for engine in engines:
        assert engine.graph.store.counts() == {"entities": 2 * n + 1, "relations": 2 * n}
    view = engines[0].graph.get_entity("alice", ALICE)
    assert len(view["entities"]) == 1 and len(view["relations"]) == 2 * n
    for e in engines:
        e.close()


def test_find_path_and_export(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph([("I", "works_at", "Acme"), ("Bob", "works_at", "Acme"), ("Bob", "married_to", "Carol")])
    mem.add("I work at Acme with Bob; Bob is married to Carol", user_id="alice")
    path = mem.graph.find_path("alice", "carol", ALICE, 3)
    assert path["found"] and path["hops"] == 3
    assert [x["relation"] for x in path["relations"]] == ["works_at", "works_at", "married_to"]
    assert not mem.graph.find_path("alice", "carol", ALICE, 2)["found"]
    assert "Nobody" in mem.graph.find_path("alice", "Nobody", ALICE, 3)["reason"]
    exported = mem.graph.export(ALICE)
    assert len(exported.nodes) == 4 and len(exported.edges) == 3


def test_rebuild_from_memories(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph([("I", "works_at", "Acme")])
    mem.add("I work at Acme", user_id="alice")
    llm.graph([("I", "lives_in", "Berlin")])
    mem.add("I live in Berlin", user_id="alice")
    mem.graph.add_relation("alice", "knows", "Bob", ALICE)  # written by an agent: survives
    mem.graph.store.delete_scope(Scope(user_id="nobody"))
    for reply in ([("alice", "works_at", "Acme")], [("alice", "lives_in", "Berlin")]):
        llm.graph(reply)
    out = rebuild_graph(mem.graph, ALICE, memory_pages(mem, ALICE))
    assert out == {"memories": 2, "relations": 2, "failed": 0}
    assert mem.graph.store.counts() == {"entities": 4, "relations": 3}
    # Every derived relation points at the memory it came from again.
    ids = {m.id for m in mem.get_all(user_id="alice").results}
    _, rels = mem.graph.store.all_of(ALICE)
    assert {s for r in rels for s in r.sources} == ids | {"explicit"}


def test_cli_graph_export(tmp_path: Path, monkeypatch, capsys) -> None:
    from mem0_mcp.cli.main import main

    data = tmp_path / "data"
    m = Memory(make_settings(data, graph_enabled=True), embedder=FakeEmbedder())
    m.graph.add_relation("Alice", "works_at", "Acme", ALICE, destination_type="organization")
    m.close()
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(data))
    assert main(["graph", "export", "--user-id", "alice"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert [e["relation"] for e in graph["edges"]] == ["works_at"] and len(graph["nodes"]) == 2
    for fmt, marker in (("graphml", "<graphml"), ("dot", "digraph")):
        out = tmp_path / f"g.{fmt}"
        assert main(["graph", "export", "--user-id", "alice", "--format", fmt, "--out", str(out)]) == 0
        assert marker in out.read_text()
    assert main(["graph", "export"]) == 2


def test_reset_drops_the_graph(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph([("I", "works_at", "Acme")])
    mem.add("I work at Acme", user_id="alice")
    mem.reset()
    assert mem.graph.store.counts() == {"entities": 0, "relations": 0}
    mem.graph.add_relation("a", "knows", "b", ALICE)
    assert mem.graph.store.counts() == {"entities": 2, "relations": 1}


CHILD = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from mem0_mcp.engine.memory import Memory
from mem0_mcp.models import GraphRelation, Scope
from tests.support.engine import FakeEmbedder, make_settings
m = Memory(make_settings(Path({data!r}), graph_enabled=True), embedder=FakeEmbedder())
m.graph.merge_threshold = 2.0  # one-word names can collide in the hashed fake embedding
for i in range({n}):
    m.graph.add_relation(f"child{{i}}", "knows", "alice", Scope(user_id="alice"))
m.close()
"""


@pytest.mark.slow
def test_two_processes_share_the_graph(tmp_path: Path) -> None:
    """Kùzu admits one process at a time: each operation opens and closes under graph.lock."""
    import subprocess
    import sys

    data = tmp_path / "data"
    n = 8
    root = str(Path(__file__).resolve().parents[1])
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=root, data=str(data), n=n)])
    m = Memory(make_settings(data, graph_enabled=True), embedder=FakeEmbedder())
    m.graph.merge_threshold = 2.0
    try:
        for i in range(n):
            m.graph.add_relation(f"parent{i}", "knows", "alice", ALICE)
        assert child.wait(timeout=120) == 0
        assert m.graph.store.counts() == {"entities": 2 * n + 1, "relations": 2 * n}
    finally:
        child.kill()
        m.close()


def test_search_memory_as_of_leaves_out_relations_that_did_not_hold_yet(mem: Memory, llm: RoutingLLM) -> None:
    llm.graph([("I", "works_at", "Anthropic")], {"Anthropic": "organization"})
    mem.add("I started at Anthropic.", user_id="alice", infer=False, timestamp="2025-06-01")
    now = mem.search("where does alice work", user_id="alice")
    assert [(r.source, r.destination) for r in now.relations] == [("alice", "Anthropic")]
    then = mem.search("where does alice work", user_id="alice", as_of="2024-01-01")
    assert then.relations == [] and then.results == []
