"""Graph tools through a real in-memory MCP Client (fake embedder, real Kùzu), and over
authenticated streamable HTTP for principal isolation and the query_graph refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from mem0_mcp.clock import now_iso
from mem0_mcp.config import Settings
from mem0_mcp.engine.memory import Memory
from mem0_mcp.server.app import create_server
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.graph_llm import CONTRADICTION, RoutingLLM
from tests.support.server import (
    TOKEN_ALICE,
    TOKEN_BOB,
    connector,
    error_text,
    fake_server,
    http_settings,
    running_http,
    structured,
)

GRAPH_TOOLS = {"search_graph", "get_entity", "find_path", "add_relation", "delete_relation"}


@pytest.fixture
def graph_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", graph_enabled=True, graph_query_enabled=True)


async def relate(client: Client, source: str, relation: str, destination: str, **extra: Any) -> dict:
    args = {"source": source, "relation": relation, "destination": destination, **extra}
    return structured(await client.call_tool("add_relation", args))["relation"]


async def test_catalogue_and_annotations(graph_settings: Settings, tmp_path: Path) -> None:
    async with Client(fake_server(graph_settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert GRAPH_TOOLS | {"query_graph"} <= set(tools)
        for name in ("search_graph", "get_entity", "find_path", "query_graph"):
            assert tools[name].annotations.read_only_hint is True, name
        assert tools["add_relation"].annotations.read_only_hint is False
        assert tools["delete_relation"].annotations.destructive_hint is True
        for name in GRAPH_TOOLS:
            assert tools[name].input_schema.get("additionalProperties") is False
            assert tools[name].output_schema is not None
    # Graph off: no graph tools; graph on without the query switch: no query_graph.
    async with Client(fake_server(make_settings(tmp_path / "off"))) as client:
        assert not GRAPH_TOOLS & {t.name for t in (await client.list_tools()).tools}
    async with Client(fake_server(make_settings(tmp_path / "noq", graph_enabled=True))) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names >= GRAPH_TOOLS and "query_graph" not in names


async def test_write_and_read_the_graph_without_an_llm(graph_settings: Settings) -> None:
    async with Client(fake_server(graph_settings)) as client:
        rel = await relate(client, "Alice", "works at", "Acme", destination_type="organization")
        assert (rel["source"], rel["relation"], rel["destination"], rel["event"]) == (
            "Alice",
            "works_at",
            "Acme",
            "ADD",
        )
        assert rel["user_id"] == "tester"  # the connection's default user
        assert (await relate(client, "alice", "works_at", "ACME"))["event"] == "NONE"
        await relate(client, "Acme", "located_in", "Berlin")
        await relate(client, "Berlin", "capital_of", "Germany")

        found = structured(await client.call_tool("search_graph", {"query": "Acme", "limit": 5}))
        assert {r["relation"] for r in found["relations"]} == {"works_at", "located_in"}
        # search_memory carries the graph's relations beside the memories.
        await client.call_tool("add_memory", {"text": "Alice started at Acme last spring"})
        both = structured(await client.call_tool("search_memory", {"query": "Acme"}))
        assert both["results"] and {r["relation"] for r in both["relations"]} == {"works_at", "located_in"}

        view = structured(await client.call_tool("get_entity", {"name": "acme", "depth": 2}))
        assert view["entities"][0]["type"] == "organization"
        assert set(view["neighbours"]) == {"Alice", "Berlin", "Germany"}

        path = structured(await client.call_tool("find_path", {"source": "Alice", "target": "Germany"}))
        assert path["found"] and [r["relation"] for r in path["relations"]] == [
            "works_at",
            "located_in",
            "capital_of",
        ]
        short = structured(
            await client.call_tool("find_path", {"source": "Alice", "target": "Germany", "max_hops": 2})
        )
        assert not short["found"]

        gone = structured(
            await client.call_tool(
                "delete_relation", {"source": "Acme", "relation": "located_in", "destination": "Berlin"}
            )
        )
        assert gone["deleted"] == 1
        path = structured(await client.call_tool("find_path", {"source": "Alice", "target": "Germany"}))
        assert not path["found"]

        # Bad input is a tool error naming the field, not a crash.
        assert "destination" in error_text(
            await client.call_tool("add_relation", {"source": "x", "relation": "is", "destination": "X"})
        )
        assert "cypher" in error_text(await client.call_tool("search_graph", {"query": "x", "cypher": "M"}))


async def test_as_of_through_the_tools(graph_settings: Settings) -> None:
    llm = RoutingLLM()
    server = create_server(
        graph_settings, memory_factory=lambda s: Memory(s, embedder=FakeEmbedder(), llm=llm)
    )

    def retire_google(system: str) -> dict:
        line = next(x for x in system.splitlines() if '-> "Google"' in x)
        return {"invalidate": [{"id": int(line.split(":")[0]), "reason": "changed jobs"}]}

    async def add(text: str, timestamp: str) -> dict:
        args = {"text": text, "infer": False, "timestamp": timestamp}
        return structured(await client.call_tool("add_memory", args))

    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("search_graph", "get_entity"):
            assert "as_of" in tools[name].input_schema["properties"], name
        llm.graph([("I", "works_at", "Google")])
        first = await add("I work at Google", "2020-01-01T00:00:00Z")
        assert first["relations"][0]["valid_from"] == "2020-01-01T00:00:00.000000Z"
        recorded = first["relations"][0]["created_at"]
        llm.graph([("I", "works_at", "Siemens")])
        llm.push(CONTRADICTION, retire_google)
        second = await add("I moved to Siemens", now_iso())
        google = next(r for r in second["relations"] if r["destination"] == "Google")
        assert google["invalidated_at"] == second["relations"][0]["valid_from"]

        async def search(as_of: str | None) -> set[str]:
            args = {"query": "where does tester work", **({"as_of": as_of} if as_of else {})}
            return {
                r["destination"]
                for r in structured(await client.call_tool("search_graph", args))["relations"]
            }

        async def entity(as_of: str | None) -> set[str]:
            args = {"name": "tester", **({"as_of": as_of} if as_of else {})}
            return {
                r["destination"] for r in structured(await client.call_tool("get_entity", args))["relations"]
            }

        assert await search("2019-06-01") == set() == await entity("2019-06-01")
        assert await search(recorded) == {"Google"} == await entity(recorded)
        assert await search(now_iso()) == {"Siemens"} == await entity(now_iso())
        assert await search(None) == {"Siemens"} and await entity(None) == {"Google", "Siemens"}
        for tool, args in (("search_graph", {"query": "Google"}), ("get_entity", {"name": "tester"})):
            text = error_text(await client.call_tool(tool, {**args, "as_of": "yesterday"}))
            assert "as_of" in text and "ISO 8601" in text, tool

        # update_memory extracts the new text again; the old relation is no longer its.
        llm.graph([("I", "works_at", "IBM")])
        llm.defaults[CONTRADICTION] = {"invalidate": []}
        updated = structured(
            await client.call_tool(
                "update_memory", {"memory_id": first["results"][0]["id"], "text": "I work at IBM"}
            )
        )
        assert [r["destination"] for r in updated["relations"]] == ["IBM"] and not updated["warnings"]
        assert "Google" not in await entity(None)


async def test_query_graph_reads_and_refuses_writes(graph_settings: Settings) -> None:
    async with Client(fake_server(graph_settings)) as client:
        await relate(client, "Alice", "knows", "Bob")
        rows = structured(
            await client.call_tool(
                "query_graph",
                {
                    "cypher": "MATCH (a:Entity)-[r:RELATES]->(b:Entity) WHERE a.name = $n "
                    "RETURN a.name AS a, r.relation AS rel, b.name AS b",
                    "params": {"n": "Alice"},
                },
            )
        )
        assert rows["rows"] == [{"a": "Alice", "rel": "knows", "b": "Bob"}]
        for cypher in (
            "MATCH (n) DETACH DELETE n",
            "MATCH (e:Entity) SET e.name = 'x' RETURN e",
            "CREATE (e:Entity {id: 'x'})",
            "CALL CREATE_FTS_INDEX('Entity', 'x', ['name'])",
            "MATCH (n) RETURN n; DROP TABLE Entity",
        ):
            assert "cypher" in error_text(await client.call_tool("query_graph", {"cypher": cypher})), cypher
        assert structured(await client.call_tool("search_graph", {"query": "Alice"}))["relations"]


async def test_principals_confined_to_their_graph_over_http(tmp_path: Path) -> None:
    settings = http_settings(tmp_path / "data", graph_enabled=True, graph_query_enabled=True)
    async with running_http(fake_server(settings), "http") as base:
        connect = connector(base, "http")
        async with connect(TOKEN_ALICE) as alice, connect(TOKEN_BOB) as bob:
            await relate(alice, "Alice", "owns", "Garden")
            await relate(bob, "Bob", "owns", "Garden")
            mine = structured(await alice.call_tool("search_graph", {"query": "Garden"}))["relations"]
            assert {r["source"] for r in mine} == {"Alice"} and {r["user_id"] for r in mine} == {"alice"}
            view = structured(await bob.call_tool("get_entity", {"name": "garden"}))
            assert [e["user_id"] for e in view["entities"]] == ["bob"]
            for tool, args in (
                ("search_graph", {"query": "Garden", "user_id": "alice"}),
                ("get_entity", {"name": "Garden", "user_id": "alice"}),
                ("find_path", {"source": "Alice", "target": "Garden", "user_id": "alice"}),
                ("add_relation", {"source": "a", "relation": "r", "destination": "b", "user_id": "alice"}),
                (
                    "delete_relation",
                    {"source": "Alice", "relation": "owns", "destination": "Garden", "user_id": "alice"},
                ),
            ):
                assert "user_id" in error_text(await bob.call_tool(tool, args)), tool
            assert not structured(await bob.call_tool("find_path", {"source": "Alice", "target": "Garden"}))[
                "found"
            ]
            refused = error_text(await alice.call_tool("query_graph", {"cypher": "MATCH (n) RETURN n"}))
            assert "authenticated" in refused
