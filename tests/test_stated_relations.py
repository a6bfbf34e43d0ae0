"""add_memory(relations=...): the host agent as the graph's extractor when the server has no LLM
(issue #13 item 2 with #15 item 6). Real LanceDB + graph log in tmp_path, real MCP clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.client import Client

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import InvalidInputError
from mem0_mcp.models import Scope, StatedRelation
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.server import error_text, fake_server, structured


def rel(source: str, relationship: str, destination: str, **types: str) -> StatedRelation:
    return StatedRelation(source=source, relationship=relationship, destination=destination, **types)


@pytest.fixture
def mem(tmp_path: Path) -> Memory:
    m = Memory(make_settings(tmp_path, graph_enabled="auto"), embedder=FakeEmbedder())
    yield m  # type: ignore[misc]
    m.close()


def test_stated_relations_are_sourced_from_the_memory(mem: Memory) -> None:
    out = mem.add(
        "Has a sister named Lena",
        user_id="alice",
        infer=False,
        relations=[rel("user", "has_sister", "Lena", destination_type="person")],
    )
    mid = out.results[0].id
    assert [(r.source, r.relation, r.destination) for r in out.relations] == [("alice", "has_sister", "Lena")]
    assert out.relations[0].sources == [mid]
    # "I" / "me" / "user" are the scope's own entity, as graph extraction reads them.
    again = mem.add(
        "I am Lena's sibling", user_id="alice", infer=False, relations=[rel("I", "sibling_of", "Lena")]
    )
    assert again.relations[0].source == "alice"
    entity = mem.graph.entity("Lena", Scope(user_id="alice"))  # type: ignore[union-attr]
    assert {r.relation for r in entity.relations} == {"has_sister", "sibling_of"}


def test_search_follows_the_agents_relations_with_no_llm(mem: Memory) -> None:
    """No server LLM (graph_enabled=auto): once the agent wrote relations, search reads the graph;
    "my sister" names no one, yet the memory about Lena ranks first. Bob's scope holds the same
    memories without relations: there the one naming the role wins."""
    assert not mem.graph_on()
    assert not mem.graph_reads()  # nothing written yet: no graph to read
    answer = {}
    for user, stated in (("bob", False), ("alice", True)):
        for filler in ("Prefers tea over coffee", "Runs on Sundays", "Plays chess online"):
            mem.add(filler, user_id=user, infer=False)
        sister = [rel("user", "has_sister", "Lena")] if stated else None
        mem.add("Has a sister named Lena", user_id=user, infer=False, relations=sister)
        job = [rel("Lena", "works_as", "architect")] if stated else None
        answer[user] = mem.add("Lena has a job designing bridges", user_id=user, infer=False, relations=job)
    assert mem.graph_reads()
    for user, first in (("alice", True), ("bob", False)):
        hits = mem.search("What job does my sister have?", user_id=user, threshold=0.0).results
        assert (hits[0].id == answer[user].results[0].id) is first, user


def test_a_repeat_attaches_relations_to_the_stored_memory(mem: Memory) -> None:
    first = mem.add("Has a dog named Juno", user_id="alice", infer=False).results[0]
    again = mem.add(
        "Has a dog named Juno", user_id="alice", infer=False, relations=[rel("user", "owns", "Juno")]
    )
    assert again.results[0].event == "NONE" and again.results[0].id == first.id
    assert again.relations[0].sources == [first.id]


def test_bad_relations_name_the_field_and_store_nothing(mem: Memory) -> None:
    for bad, field in (
        (rel("user", "has_sister", "  "), r"relations\[0\]\.destination"),
        (rel("user", "!!", "Lena"), r"relations\[0\]\.relationship"),
        (rel("Lena", "is", "lena"), r"relations\[0\]\.destination.*differ"),
    ):
        with pytest.raises(InvalidInputError, match=field):
            mem.add("Has a sister named Lena", user_id="alice", infer=False, relations=[bad])
    assert mem.get_all(user_id="alice").total == 0


def test_relations_with_the_graph_off_say_which_setting(tmp_path: Path) -> None:
    m = Memory(make_settings(tmp_path, graph_enabled="false"), embedder=FakeEmbedder())
    try:
        with pytest.raises(InvalidInputError, match=r"relations.*MEM0_MCP_GRAPH_ENABLED"):
            m.add(
                "Has a sister named Lena", user_id="alice", infer=False, relations=[rel("user", "x", "Lena")]
            )
        assert m.get_all(user_id="alice").total == 0
    finally:
        m.close()


async def test_add_memory_tool_takes_relations(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, graph_enabled="auto")
    async with Client(fake_server(settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        schema = tools["add_memory"].input_schema
        assert "relations" in schema["properties"]
        res = await client.call_tool(
            "add_memory",
            {
                "text": "Adopted a cat named Miso",
                "user_id": "alice",
                "relations": [
                    {
                        "source": "user",
                        "relationship": "owns",
                        "destination": "Miso",
                        "destination_type": "cat",
                    }
                ],
            },
        )
        out = structured(res)
        assert out["relations"][0]["destination"] == "Miso"
        assert out["relations"][0]["destination_type"] == "cat"
        bad = await client.call_tool(
            "add_memory",
            {"text": "x y", "user_id": "alice", "relations": [{"source": "user", "relationship": "owns"}]},
        )
        assert bad.is_error and "destination" in error_text(bad)
        guide = await client.get_prompt("memory_guide")
        assert "relations" in guide.messages[0].content.text  # type: ignore[union-attr]
