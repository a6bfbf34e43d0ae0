"""Undo: restore_memory reverts the latest change of a memory, whoever made it, and is itself a
change in the history (so it can be undone too). History says who made each change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mcp.client import Client

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import InvalidInputError, NotFoundError
from mem0_mcp.models import Scope
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.fake_llm import FakeLLM, decisions, facts
from tests.support.server import error_text, fake_server, structured


@pytest.fixture
def mem(tmp_path: Path) -> Memory:
    m = Memory(make_settings(tmp_path / "data", llm_single_call=False), embedder=FakeEmbedder())
    yield m
    m.close()


def vector_of(mem: Memory, memory_id: str) -> np.ndarray:
    mem.flush()
    rows = mem.storage.vectors.query(f"id = '{memory_id}'", columns=("id", "vector"))
    return np.asarray(rows[0]["vector"])


def test_restore_an_update_brings_back_text_metadata_and_vector(mem: Memory) -> None:
    item = mem.add("Lives in Porto", user_id="u", metadata={"topic": "home"}).results[0]
    before = vector_of(mem, item.id)
    mem.update(item.id, text="Lives in Lisbon", metadata={"topic": "moved"}, source="agent")
    result = mem.restore(item.id, source="person")
    assert result.reverted == "UPDATE" and result.memory is not None
    assert (result.memory.memory, result.memory.metadata) == ("Lives in Porto", {"topic": "home"})
    assert np.allclose(vector_of(mem, item.id), before, atol=1e-6)
    assert mem.search("Porto", user_id="u").results[0].id == item.id
    events = [(h.event, h.source, h.new_memory) for h in mem.history(item.id)]
    assert events == [
        ("ADD", "api", "Lives in Porto"),
        ("UPDATE", "agent", "Lives in Lisbon"),
        ("RESTORE", "person", "Lives in Porto"),
    ]
    # Undoing the undo: the update is back.
    again = mem.restore(item.id)
    assert again.reverted == "RESTORE" and again.memory and again.memory.memory == "Lives in Lisbon"


def test_restore_a_delete_brings_the_memory_back_whole(mem: Memory) -> None:
    conversation = [
        {"role": "user", "name": "Ann", "content": "We adopted a greyhound."},
        {"role": "user", "name": "Ann", "content": "Her name is Pixel."},
    ]
    first, second = mem.add(conversation, user_id="u", timestamp="2026-01-02T03:04:05Z").results
    before = mem.get(second.id)
    vector = vector_of(mem, second.id)
    mem.delete(second.id)
    with pytest.raises(NotFoundError):
        mem.get(second.id)
    result = mem.restore(second.id)
    assert result.reverted == "DELETE" and result.memory is not None
    after = mem.get(second.id)
    assert after.model_dump(exclude={"updated_at"}) == before.model_dump(exclude={"updated_at"})
    assert np.allclose(vector_of(mem, second.id), vector, atol=1e-6)
    # And the restore of that restore removes it again.
    assert mem.restore(second.id).memory is None
    with pytest.raises(NotFoundError):
        mem.get(second.id)
    assert first.id


def test_restore_a_supersede_makes_the_old_memory_live(mem: Memory) -> None:
    old = mem.add("Works at Stripe", user_id="u").results[0]
    mem.add("Works at Anthropic", user_id="u", supersedes=[old.id], source="agent")
    assert mem.get_all(user_id="u").total == 1
    result = mem.restore(old.id)
    assert result.reverted == "DELETE" and result.memory and result.memory.superseded_by is None
    assert mem.get_all(user_id="u").total == 2


def test_restore_undoes_the_memory_managers_decisions(tmp_path: Path) -> None:
    llm = FakeLLM()
    mem = Memory(make_settings(tmp_path / "data", llm_single_call=False), embedder=FakeEmbedder(), llm=llm)
    try:
        old = mem.add("Lives in Porto Portugal", user_id="u", infer=False).results[0]
        llm.push(facts("Lives in Lisbon Portugal"), decisions({"fact": 0, "event": "UPDATE", "id": 0}))
        result = mem.add("I moved to Lisbon, Portugal", user_id="u", infer=True)
        assert [e.event for e in result.results] == ["UPDATE"]
        assert mem.history(old.id)[-1].source == "llm"
        assert mem.restore(old.id).memory.memory == "Lives in Porto Portugal"  # type: ignore[union-attr]
    finally:
        mem.close()


def test_restore_refuses_what_it_cannot_do(mem: Memory) -> None:
    item = mem.add("Likes tea", user_id="u").results[0]
    with pytest.raises(InvalidInputError, match="never changed"):
        mem.restore(item.id)
    with pytest.raises(NotFoundError):
        mem.restore("no-such-id")
    mem.update(item.id, text="Likes green tea")
    with pytest.raises(NotFoundError):
        mem.restore(item.id, scope=Scope(user_id="someone else"))
    with pytest.raises(InvalidInputError, match="memory_id"):
        mem.restore("")
    assert mem.get(item.id).memory == "Likes green tea"


async def test_restore_memory_tool(tmp_path: Path) -> None:
    async with Client(fake_server(make_settings(tmp_path / "data", user_id="me"))) as client:
        added = structured(await client.call_tool("add_memory", {"text": "Likes tea"}))["results"][0]
        await client.call_tool("update_memory", {"memory_id": added["id"], "text": "Likes coffee"})
        restored = structured(await client.call_tool("restore_memory", {"memory_id": added["id"]}))
        assert restored["reverted"] == "UPDATE" and restored["memory"]["memory"] == "Likes tea"
        history = structured(await client.call_tool("memory_history", {"memory_id": added["id"]}))
        assert [(h["event"], h["source"]) for h in history["entries"]] == [
            ("ADD", "agent"),
            ("UPDATE", "agent"),
            ("RESTORE", "agent"),
        ]
        assert "memory_id" in error_text(await client.call_tool("restore_memory", {"memory_id": "nope"}))
