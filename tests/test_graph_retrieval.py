"""graph_enabled=auto|true|false (issue #15 item 2) and the graph as a retriever of search_memory
(item 6): real Kùzu + LanceDB in tmp_path, scripted LLM, real in-memory MCP clients."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client import Client

from mem0_mcp.config import load_settings
from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.ranking import fuse
from mem0_mcp.errors import ConfigError
from mem0_mcp.graph.links import role_chains
from mem0_mcp.models import Scope
from mem0_mcp.server.app import create_server
from mem0_mcp.server.sampling import RequestSamplingLLM
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.graph_llm import CONTRADICTION, RoutingLLM
from tests.support.server import structured

ALICE = Scope(user_id="alice")
GRAPH_TOOLS = {"search_graph", "get_entity", "find_path", "add_relation", "delete_relation"}


# ---------------------------------------------------------------------------- graph_enabled


@pytest.mark.parametrize(
    ("given", "mode"),
    [(None, "auto"), ("auto", "auto"), (True, "true"), (False, "false"), ("TRUE", "true"), ("off", "false")],
)
def test_graph_enabled_values(tmp_path: Path, given: object, mode: str) -> None:
    extra = {} if given is None else {"graph_enabled": given}
    assert load_settings(data_dir=tmp_path, **extra).graph_enabled == mode


@pytest.mark.parametrize(
    ("env", "mode"), [("auto", "auto"), ("true", "true"), ("false", "false"), ("1", "true")]
)
def test_graph_enabled_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, mode: str
) -> None:
    monkeypatch.setenv("MEM0_MCP_GRAPH_ENABLED", env)
    assert load_settings(data_dir=tmp_path).graph_enabled == mode


def test_bad_graph_enabled_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"graph_enabled.*MEM0_MCP_GRAPH_ENABLED.*'auto', 'true' or 'false'"
    ):
        load_settings(data_dir=tmp_path, graph_enabled="sometimes")


def engine(tmp_path: Path, mode: str, llm: object = None) -> Memory:
    return Memory(make_settings(tmp_path / mode, graph_enabled=mode), embedder=FakeEmbedder(), llm=llm)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "llm", "sampling_client", "on"),
    [
        ("auto", None, False, False),  # no LLM: nothing to extract
        ("auto", "server", False, True),  # anthropic / openai_compatible
        ("auto", "sampling", False, False),  # sampling, but this client did not declare it
        ("auto", "sampling", True, True),  # sampling with a client that declared it
        ("true", None, False, True),
        ("false", "server", True, False),
    ],
)
def test_graph_on_follows_the_one_llm_rule(
    tmp_path: Path, mode: str, llm: str | None, sampling_client: bool, on: bool
) -> None:
    backend = RoutingLLM() if llm == "server" else RequestSamplingLLM() if llm == "sampling" else None
    mem = engine(tmp_path, mode, backend)
    try:
        assert mem.graph_on(sampling_client=sampling_client) is on
        # infer_default=auto answers by the same rule.
        assert mem.default_infer(sampling_client=sampling_client) is mem.has_llm(
            sampling_client=sampling_client
        )
        assert (mem.graph is None) is (mode == "false")  # the tools' graph opens unless false
    finally:
        mem.close()


def test_auto_without_llm_searches_the_graph_the_agent_wrote(tmp_path: Path) -> None:
    """No LLM extracts (graph_on is false), but relations the agent wrote (add_relation, add's
    ``relations``) are read by search once there: before any, search never opens the graph."""
    mem = engine(tmp_path, "auto")
    try:
        assert not mem.graph_on() and not mem.graph_reads()
        mem.add("Lena lives in Vienna", user_id="alice")
        assert mem.search("Where does my sister live?", user_id="alice").relations == []
        assert mem.graph is not None
        mem.graph.add_relation("alice", "has_sister", "Lena", ALICE)
        assert mem.graph_reads()
        found = mem.search("Where does my sister live?", user_id="alice")
        assert [r.memory for r in found.results] == ["Lena lives in Vienna"]
        assert [r.relation for r in found.relations] == ["has_sister"]
    finally:
        mem.close()


async def test_tool_list_by_mode_and_add_relation_without_llm(tmp_path: Path) -> None:
    for mode, listed in (("auto", True), ("false", False), ("true", True)):
        settings = make_settings(tmp_path / mode, graph_enabled=mode)
        server = create_server(settings, memory_factory=lambda s: Memory(s, embedder=FakeEmbedder()))
        async with Client(server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert (names >= GRAPH_TOOLS) is listed and (not names & GRAPH_TOOLS) is (not listed)
            if mode == "auto":
                args = {"source": "Alice", "relation": "works_at", "destination": "Acme"}
                rel = structured(await client.call_tool("add_relation", args))["relation"]
                assert rel["event"] == "ADD"
                got = structured(await client.call_tool("search_graph", {"query": "Alice"}))
                assert [r["destination"] for r in got["relations"]] == ["Acme"]


def test_delete_with_auto_and_no_graph_on_disk_never_opens_it(tmp_path: Path) -> None:
    mem = engine(tmp_path, "auto")
    try:
        added = mem.add("Plays chess", user_id="alice")
        mem.delete(added.results[0].id)
        mem.delete_all(user_id="alice")
        assert not mem.settings.graph_dir.exists()
    finally:
        mem.close()


# ---------------------------------------------------------------------------- graph retrieval


def test_role_chains() -> None:
    assert role_chains("Who is my sister's husband?") == [(None, ["sister", "husband"])]
    assert role_chains("What breed is the user's dog?") == [(None, ["dog"])]
    assert role_chains("What's Alice's manager called?") == [("Alice", ["manager"])]
    assert role_chains("Where does the user work?") == []


@pytest.fixture
def graph_mem(tmp_path: Path) -> Iterator[tuple[Memory, RoutingLLM]]:
    llm = RoutingLLM(defaults={CONTRADICTION: {"invalidate": []}})
    mem = Memory(make_settings(tmp_path / "data", graph_enabled=True), embedder=FakeEmbedder(), llm=llm)
    yield mem, llm
    mem.close()


def remember(mem: Memory, llm: RoutingLLM, text: str, *relations: tuple[str, str, str], **types: str) -> str:
    llm.graph(list(relations), types)
    return mem.add(text, user_id="alice", infer=False).results[0].id


def test_the_graph_finds_facts_about_the_entity_a_role_names(graph_mem: tuple[Memory, RoutingLLM]) -> None:
    mem, llm = graph_mem
    bridge = remember(mem, llm, "Has a sister named Lena", ("I", "has_sister", "Lena"))
    answer = remember(mem, llm, "Lena lives in Vienna", ("Lena", "lives_in", "Vienna"))
    remember(mem, llm, "Owns a dog named Juno", ("I", "owns", "Juno"), Juno="dog")
    breed = remember(mem, llm, "Juno is a border collie", ("Juno", "is_a", "border collie"))
    assert mem.graph is not None
    # One hop from the entity the role resolved to; the relation that resolved it is left out.
    assert mem.graph.memory_links("Where does my sister live?", ALICE) == {answer: 1.0}
    assert mem.graph.memory_links("What breed is the user's dog?", ALICE) == {breed: 1.0}
    assert mem.graph.memory_links("Where does the user work?", ALICE) == {}
    for query, want in (("Where does my sister live?", answer), ("What breed is the user's dog?", breed)):
        on = mem.search(query, user_id="alice")
        assert on.results[0].id == want
        off = mem.search(query, user_id="alice", use_graph=False)
        assert off.relations == [] and {r.id for r in off.results} == {r.id for r in on.results}
    assert bridge in {r.id for r in mem.search("sister", user_id="alice").results}


def test_a_failing_graph_never_fails_a_search(
    graph_mem: tuple[Memory, RoutingLLM], caplog: pytest.LogCaptureFixture
) -> None:
    mem, llm = graph_mem
    remember(mem, llm, "Lena lives in Vienna", ("Lena", "lives_in", "Vienna"))
    graph = mem.graph
    assert graph is not None

    def broken(query: str, scope: Scope) -> dict[str, float]:
        raise RuntimeError("graph store gone")

    graph.memory_links = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="mem0_mcp.engine.search"):
        found = mem.search("Where does my sister live?", user_id="alice")
    assert [r.memory for r in found.results] == ["Lena lives in Vienna"]
    assert "graph retriever failed" in caplog.text


def test_without_links_fusion_ranks_as_before() -> None:
    dense = [{"id": "a", "_distance": 0.2}, {"id": "b", "_distance": 0.5}]
    text = [{"id": "b", "_score": 3.0, "_coverage": 0.5}]
    plain = [(c.row["id"], c.score) for c in fuse(dense, text, vector_weight=0.4, query="q")]
    assert [
        (c.row["id"], c.score) for c in fuse(dense, text, vector_weight=0.4, query="q", linked={})
    ] == plain
    linked = fuse(
        dense, text, vector_weight=0.4, query="q", linked={"a": 1.0, "c": 1.0}, linked_rows=[{"id": "c"}]
    )
    assert [c.row["id"] for c in linked][:1] == ["a"] and "graph" in linked[0].sources
    assert {c.row["id"] for c in linked} == {"a", "b", "c"}


@pytest.mark.parametrize(("role", "answer"), [("a", "z"), ("z", "a")])
def test_a_tie_with_the_memory_naming_the_role_goes_to_the_link(role: str, answer: str) -> None:
    """The answer is the lowest cosine of three (dense share 0) and shares no word: linked, it
    ties exactly with the memory naming the role (tops both retrievers). The link wins whatever
    the ids (the ids decided it before: a coin flip between runs)."""
    dense = [{"id": role, "_distance": 0.6}, {"id": "m", "_distance": 0.7}, {"id": answer, "_distance": 0.8}]
    text = [{"id": role, "_score": 2.0, "_coverage": 0.5}]
    ranked = fuse(
        dense, text, vector_weight=0.4, query="Where did the user's partner grow up?", linked={answer: 1.0}
    )
    assert ranked[0].score == ranked[1].score
    assert [c.row["id"] for c in ranked[:2]] == [answer, role]
