"""Every tool, resource and prompt through a real in-memory MCP Client (fake embedder, real stores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from mem0_mcp.config import Settings
from mem0_mcp.server.app import create_server
from mem0_mcp.server.stdio_front import capture_manifest, load_manifest, manifest_server
from tests.support.engine import make_settings
from tests.support.server import error_text, fake_server, structured

TOOLS = {
    "add_memory",
    "search_memory",
    "get_memory",
    "list_memories",
    "update_memory",
    "delete_memory",
    "delete_all_memories",
    "memory_history",
    "restore_memory",
}


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", user_id="tester")


async def add(client: Client, **args: Any) -> list[dict[str, Any]]:
    return structured(await client.call_tool("add_memory", args))["results"]


async def test_tool_catalogue(server_settings: Settings) -> None:
    async with Client(fake_server(server_settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.title and tool.description and len(tool.description) > 40
            assert tool.output_schema is not None, tool.name
            assert tool.input_schema.get("additionalProperties") is False, tool.name
            ann = tool.annotations
            assert ann is not None and ann.open_world_hint is False
        for name in ("search_memory", "get_memory", "list_memories", "memory_history"):
            assert tools[name].annotations.read_only_hint is True
        for name in ("update_memory", "delete_memory", "delete_all_memories"):
            assert tools[name].annotations.destructive_hint is True
            assert tools[name].annotations.read_only_hint is False
        assert tools["add_memory"].annotations.read_only_hint is False
        assert tools["add_memory"].annotations.destructive_hint is False
        assert tools["delete_memory"].annotations.idempotent_hint is True
        assert "next_cursor" in tools["list_memories"].output_schema["properties"]
        assert client.instructions and "search_memory" in client.instructions


async def test_add_search_get_update_delete_history(server_settings: Settings) -> None:
    async with Client(fake_server(server_settings)) as client:
        [event] = await add(client, text="I love hiking in the mountains", metadata={"topic": "outdoors"})
        assert event["event"] == "ADD"
        memory_id = event["id"]
        # Exact duplicate in the same scope is not stored twice.
        assert (await add(client, text="I love hiking in the mountains"))[0]["event"] == "NONE"
        await add(client, text="My sister lives in Lisbon")

        hits = structured(await client.call_tool("search_memory", {"query": "hiking mountains"}))["results"]
        assert hits[0]["id"] == memory_id and 0 <= hits[0]["score"] <= 1
        # No scope given over stdio: the default user from settings filled in.
        assert hits[0]["user_id"] == "tester"

        filtered = structured(
            await client.call_tool(
                "search_memory", {"query": "Lisbon hiking", "filters": {"topic": "outdoors"}, "limit": 5}
            )
        )["results"]
        assert [h["id"] for h in filtered] == [memory_id]

        got = structured(await client.call_tool("get_memory", {"memory_id": memory_id}))
        assert got["memory"] == "I love hiking in the mountains" and got["metadata"] == {"topic": "outdoors"}

        updated = structured(
            await client.call_tool(
                "update_memory", {"memory_id": memory_id, "text": "I love hiking in the Alps"}
            )
        )
        assert updated["memory"] == "I love hiking in the Alps"

        deleted = structured(await client.call_tool("delete_memory", {"memory_id": memory_id}))
        assert deleted["deleted"] == 1
        assert "memory_id" in error_text(await client.call_tool("get_memory", {"memory_id": memory_id}))

        history = structured(await client.call_tool("memory_history", {"memory_id": memory_id}))
        assert history["memory_id"] == memory_id
        assert [e["event"] for e in history["entries"]] == ["ADD", "UPDATE", "DELETE"]
        assert history["entries"][1]["old_memory"] == "I love hiking in the mountains"


async def test_multi_message_add_reports_progress(server_settings: Settings) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    messages = [{"role": "user", "content": f"fact number {i} about gardening"} for i in range(5)]
    async with Client(fake_server(server_settings)) as client:
        result = await client.call_tool(
            "add_memory", {"messages": messages, "agent_id": "gardener"}, progress_callback=on_progress
        )
        events = structured(result)["results"]
        assert len(events) == 5 and all(e["event"] == "ADD" for e in events)
    assert seen, "a multi-message add must report progress"
    assert seen[-1][0] == seen[-1][1]
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)


async def test_list_memories_pages_with_opaque_cursor(server_settings: Settings) -> None:
    async with Client(fake_server(server_settings)) as client:
        for i in range(23):
            await add(client, text=f"note {i} for paging", run_id="r1")
        await add(client, text="another run", run_id="r2")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            args: dict[str, Any] = {"run_id": "r1", "limit": 10}
            if cursor:
                args["cursor"] = cursor
            page = structured(await client.call_tool("list_memories", args))
            pages += 1
            assert page["total"] == 23 and len(page["results"]) <= 10
            seen += [m["id"] for m in page["results"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 10
        assert pages == 3 and len(seen) == len(set(seen)) == 23

        first = structured(await client.call_tool("list_memories", {"run_id": "r1", "limit": 10}))
        # A cursor only continues the listing it came from.
        reused = await client.call_tool(
            "list_memories", {"run_id": "r2", "limit": 10, "cursor": first["next_cursor"]}
        )
        assert "cursor" in error_text(reused)
        garbage = await client.call_tool("list_memories", {"run_id": "r1", "cursor": "not-a-cursor"})
        assert "cursor" in error_text(garbage)


async def test_delete_all_needs_a_scope_and_keeps_other_scopes(server_settings: Settings) -> None:
    async with Client(fake_server(server_settings)) as client:
        await add(client, text="agent note one", agent_id="a1")
        await add(client, text="agent note two", agent_id="a1")
        await add(client, text="other agent note", agent_id="a2")
        refused = await client.call_tool("delete_all_memories", {})
        assert "scope" in error_text(refused)
        done = structured(await client.call_tool("delete_all_memories", {"agent_id": "a1"}))
        assert done["deleted"] == 2
        left = structured(await client.call_tool("list_memories", {"agent_id": "a2"}))
        assert [m["memory"] for m in left["results"]] == ["other agent note"]
        assert structured(await client.call_tool("list_memories", {"agent_id": "a1"}))["total"] == 0


async def test_bad_input_gets_clear_tool_errors(server_settings: Settings) -> None:
    async with Client(fake_server(server_settings)) as client:
        assert "text/messages" in error_text(await client.call_tool("add_memory", {}))
        assert "text/messages" in error_text(
            await client.call_tool("add_memory", {"text": "x y", "messages": [{"content": "x"}]})
        )
        # Each error names the argument the agent gave, not an engine parameter.
        assert error_text(await client.call_tool("add_memory", {"text": "   "})).startswith(
            "Error executing tool add_memory: text:"
        )
        for tool in ("get_memory", "delete_memory", "memory_history", "restore_memory"):
            nul = error_text(await client.call_tool(tool, {"memory_id": "a\x00b"}))
            assert "memory_id:" in nul and "NUL" in nul and "filters" not in nul
        unknown = await client.call_tool("search_memory", {"query": "x", "colour": "red"})
        assert "colour" in error_text(unknown) and "Extra inputs" in error_text(unknown)
        assert "limit" in error_text(await client.call_tool("search_memory", {"query": "x", "limit": "many"}))
        assert "limit" in error_text(await client.call_tool("search_memory", {"query": "x", "limit": 0}))
        assert "limit" in error_text(
            await client.call_tool("search_memory", {"query": "x", "limit": 1_000_000})
        )
        bad_filter = await client.call_tool("search_memory", {"query": "x", "filters": {"k": {"like": 1}}})
        assert "filters" in error_text(bad_filter) or "like" in error_text(bad_filter)
        assert "memory_id" in error_text(await client.call_tool("get_memory", {"memory_id": "nope"}))
        assert "memory_id" in error_text(await client.call_tool("memory_history", {"memory_id": "nope"}))
        assert "memory_id" in error_text(
            await client.call_tool("update_memory", {"memory_id": "nope", "text": "x"})
        )
        assert "text/metadata" in error_text(await client.call_tool("update_memory", {"memory_id": "nope"}))
        assert "memory_id" in error_text(await client.call_tool("delete_memory", {"memory_id": "nope"}))
        assert "Unknown tool" in error_text(await client.call_tool("forget_everything", {}))
        # The server kept serving through all of that.
        assert (await add(client, text="still works"))[0]["event"] == "ADD"


async def test_resources_and_prompt(server_settings: Settings) -> None:
    async with Client(fake_server(server_settings)) as client:
        await add(client, text="first memory", user_id="tester")
        await add(client, text="second memory", user_id="tester")
        templates = (await client.list_resource_templates()).resource_templates
        assert any(t.uri_template == "memory://{user_id}/recent" for t in templates)
        assert any(str(r.uri) == "memory://stats" for r in (await client.list_resources()).resources)

        import json

        recent = json.loads((await client.read_resource("memory://tester/recent")).contents[0].text)
        assert recent["total"] == 2 and {m["memory"] for m in recent["results"]} == {
            "first memory",
            "second memory",
        }
        stats = json.loads((await client.read_resource("memory://stats")).contents[0].text)
        assert stats["memories"] == 2 and stats["embedder_ready"] is True

        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["memory_guide"]
        guide = (await client.get_prompt("memory_guide")).messages[0].content.text
        assert "search_memory" in guide and "add_memory" in guide


async def test_an_engine_that_cannot_open_fails_calls_not_the_server(server_settings: Settings) -> None:
    def broken(_: Settings) -> Any:
        from mem0_mcp.errors import EmbedderMismatchError

        raise EmbedderMismatchError("embedder_model: the store was built with model-a, not model-b")

    async with Client(create_server(server_settings, memory_factory=broken)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        failed = await client.call_tool("search_memory", {"query": "x"})
        assert "unavailable" in error_text(failed) and "model-a" in error_text(failed)


async def test_manifest_matches_the_live_server() -> None:
    live = await capture_manifest(manifest_server())
    assert load_manifest() == live, (
        "mem0_mcp/manifest.json is stale: run python -m mem0_mcp.server.stdio_front --write-manifest"
    )


async def test_add_memory_with_event_time_and_type(server_settings: Settings) -> None:
    async with Client(fake_server(server_settings)) as client:
        [event] = await add(
            client,
            messages=[{"role": "user", "content": "We moved to Porto", "name": "Ana"}],
            timestamp="2023-05-08T13:56:00Z",
            memory_type="episodic",
        )
        item = structured(await client.call_tool("get_memory", {"memory_id": event["id"]}))
        assert item["event_at"] == "2023-05-08T13:56:00.000000Z"
        assert item["memory_type"] == "episodic" and item["name"] == "Ana"
        bad = await client.call_tool("add_memory", {"text": "x", "timestamp": "someday"})
        assert "timestamp" in error_text(bad)


async def test_pages_keep_their_place_when_memories_come_and_go(server_settings: Settings) -> None:
    """Adds and deletes between pages neither repeat nor skip a memory (#16)."""
    async with Client(fake_server(server_settings)) as client:
        ids = [(await add(client, text=f"fact number {i}"))[0]["id"] for i in range(25)]
        first = structured(await client.call_tool("list_memories", {"limit": 10}))
        seen = [m["id"] for m in first["results"]]
        for i in range(5):
            await add(client, text=f"added between pages {i}")
        deleted = ids[10:13]  # on the second page: newest first, ids[14]..ids[5]
        for memory_id in deleted:
            await client.call_tool("delete_memory", {"memory_id": memory_id})
        cursor = first["next_cursor"]
        while cursor:
            page = structured(await client.call_tool("list_memories", {"limit": 10, "cursor": cursor}))
            seen += [m["id"] for m in page["results"]]
            cursor = page["next_cursor"]
        assert len(seen) == len(set(seen))
        assert set(seen) == set(ids) - set(deleted)
