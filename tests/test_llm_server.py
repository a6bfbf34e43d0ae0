"""The MCP add_memory tool with infer=true end to end: real in-memory MCP Client, fake LLM."""

from __future__ import annotations

from pathlib import Path

from mcp.client import Client

from mem0_mcp.engine.memory import Memory
from mem0_mcp.server.app import create_server
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.fake_llm import FakeLLM, decisions, facts
from tests.support.server import structured


async def test_add_memory_infer_through_mcp(tmp_path: Path) -> None:
    llm = FakeLLM()
    # Two-call mode: the extraction and decision replies are scripted separately.
    settings = make_settings(tmp_path / "data", user_id="tester", llm_single_call=False)
    server = create_server(settings, memory_factory=lambda s: Memory(s, embedder=FakeEmbedder(), llm=llm))
    async with Client(server) as client:
        llm.push(facts("Lives in Berlin", "Is vegetarian"))
        first = structured(
            await client.call_tool(
                "add_memory",
                {"messages": [{"role": "user", "content": "I'm a vegetarian from Berlin"}], "infer": True},
            )
        )
        assert first["inferred"] is True
        assert [(r["event"], r["memory"]) for r in first["results"]] == [
            ("ADD", "Lives in Berlin"),
            ("ADD", "Is vegetarian"),
        ]
        assert first["usage"]["llm_calls"] == 1
        berlin = first["results"][0]["id"]

        llm.push(facts("Lives in Munich"), decisions({"fact": 0, "event": "DELETE", "id": 0}))
        second = structured(
            await client.call_tool("add_memory", {"text": "I moved to Munich", "infer": True})
        )
        assert {(r["event"], r["memory"]) for r in second["results"]} == {
            ("ADD", "Lives in Munich"),
            ("DELETE", "Lives in Berlin"),
        }
        assert second["usage"]["llm_calls"] == 2

        found = structured(await client.call_tool("search_memory", {"query": "where does the user live"}))
        assert "Lives in Berlin" not in {r["memory"] for r in found["results"]}
        old = structured(await client.call_tool("get_memory", {"memory_id": berlin}))
        assert old["superseded_at"] and old["superseded_by"]

        # Malformed JSON twice: stored verbatim, with the reason.
        llm.push("no json", "still no json")
        third = structured(await client.call_tool("add_memory", {"text": "I have two cats", "infer": True}))
        assert third["inferred"] is False and "invalid JSON" in third["reason"]
        assert [r["memory"] for r in third["results"]] == ["I have two cats"]
