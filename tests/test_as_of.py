"""search_memory(as_of=...): memories as they stood at a time (issue #15 item 4), through the engine
and a real in-memory MCP client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client import Client

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import InvalidInputError
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.server import error_text, fake_server, structured


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    m = Memory(make_settings(tmp_path / "data"), embedder=FakeEmbedder())
    yield m
    m.close()


def texts(mem: Memory, query: str, **kw: object) -> list[str]:
    return [r.memory for r in mem.search(query, user_id="alice", **kw).results]  # type: ignore[arg-type]


def job_history(mem: Memory) -> tuple[str, str]:
    """Stripe from 2023-01, replaced by Anthropic in 2023-06 (an agent's supersedes)."""
    old = mem.add("Works at Stripe as an engineer", user_id="alice", timestamp="2023-01-10T09:00:00Z")
    new = mem.add(
        "Works at Anthropic as an engineer",
        user_id="alice",
        timestamp="2023-06-01T09:00:00Z",
        supersedes=[old.results[0].id],
    )
    return old.results[0].id, new.results[0].id


def test_as_of_hides_later_memories_and_shows_what_was_superseded_later(mem: Memory) -> None:
    job_history(mem)
    mem.add("Likes green tea", user_id="alice", timestamp="2023-03-01")
    assert texts(mem, "Where does the user work?") == ["Works at Anthropic as an engineer", "Likes green tea"]
    # In March 2023 Stripe was the job: Anthropic had not happened, the supersede neither.
    march = texts(mem, "Where does the user work?", as_of="2023-03-15")
    assert "Works at Stripe as an engineer" in march and "Works at Anthropic as an engineer" not in march
    assert "Likes green tea" in march
    # In February the tea had not happened yet; a date alone is midnight UTC.
    assert texts(mem, "green tea", as_of="2023-02-28") == ["Works at Stripe as an engineer"]
    assert "Likes green tea" in texts(mem, "green tea", as_of="2023-03-01")
    # After the change: Anthropic only. The supersede counts from the event of the memory that
    # superseded (June 2023), not from when it was written (today).
    after = texts(mem, "Where does the user work?", as_of="2023-07-01T00:00:00+02:00")
    assert "Works at Anthropic as an engineer" in after and "Works at Stripe as an engineer" not in after
    # include_superseded shows both, as without as_of; before anything: nothing.
    both = texts(mem, "Where does the user work?", as_of="2023-07-01", include_superseded=True)
    assert {"Works at Stripe as an engineer", "Works at Anthropic as an engineer"} <= set(both)
    assert texts(mem, "Where does the user work?", as_of="2022-12-31") == []


def test_as_of_through_lancedb_as_well_as_the_copy(mem: Memory) -> None:
    # A search with filters is served by LanceDB, not the in-process copy: same answer.
    job_history(mem)
    got = texts(mem, "Where does the user work?", as_of="2023-03-15", filters={"missing": {"ne": "x"}})
    plain = texts(mem, "Where does the user work?", as_of="2023-03-15")
    assert got == plain == ["Works at Stripe as an engineer"]


def test_memory_without_event_time_counts_from_its_add(mem: Memory) -> None:
    mem.add("Plays the cello", user_id="alice")
    assert texts(mem, "cello", as_of="2020-01-01") == []
    assert texts(mem, "cello", as_of="2999-01-01") == ["Plays the cello"]


@pytest.mark.parametrize("bad", ["last week", "2023-13-01", "", True])
def test_bad_as_of_names_the_field(mem: Memory, bad: object) -> None:
    with pytest.raises(InvalidInputError, match="as_of"):
        mem.search("anything", user_id="alice", as_of=bad)  # type: ignore[arg-type]


async def test_as_of_through_a_real_mcp_client(tmp_path: Path) -> None:
    async with Client(fake_server(make_settings(tmp_path / "data"))) as client:
        old = structured(
            await client.call_tool(
                "add_memory", {"text": "Lives in Berlin", "user_id": "alice", "timestamp": "2022-05-01"}
            )
        )
        args = {"text": "Lives in Lisbon", "user_id": "alice", "timestamp": "2024-02-01"}
        await client.call_tool("add_memory", {**args, "supersedes": [old["results"][0]["id"]]})
        then = structured(
            await client.call_tool(
                "search_memory",
                {"query": "Where does the user live?", "user_id": "alice", "as_of": "2023-01-01"},
            )
        )
        assert [r["memory"] for r in then["results"]] == ["Lives in Berlin"]
        now = structured(
            await client.call_tool(
                "search_memory", {"query": "Where does the user live?", "user_id": "alice"}
            )
        )
        assert [r["memory"] for r in now["results"]] == ["Lives in Lisbon"]
        bad = await client.call_tool("search_memory", {"query": "x", "as_of": "yesterday"})
        assert bad.is_error and "as_of" in error_text(bad)
