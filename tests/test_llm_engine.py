"""add(..., infer=True) end to end through Memory, with the scripted LLM and real LanceDB/SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import NotFoundError
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.fake_llm import FakeLLM, decisions, facts


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def mem(tmp_path: Path, llm: FakeLLM) -> Iterator[Memory]:
    # Two-call mode: these tests script the extraction and the decision replies separately.
    m = Memory(make_settings(tmp_path / "data", llm_single_call=False), embedder=FakeEmbedder(), llm=llm)
    yield m
    m.close()


def texts(page) -> set[str]:
    return {i.memory for i in page.results}


def test_infer_adds_facts_with_usage_and_history(mem: Memory, llm: FakeLLM):
    llm.push(facts("Is vegetarian", "Lives in Berlin"))
    r = mem.add(
        [{"role": "user", "content": "Hi! I'm a vegetarian living in Berlin.", "name": "Alice"}],
        user_id="alice",
        infer=True,
        metadata={"source": "chat"},
    )
    assert r.inferred and r.reason is None
    assert [(e.event, e.memory) for e in r.results] == [("ADD", "Is vegetarian"), ("ADD", "Lives in Berlin")]
    assert r.usage.llm_calls == 1 and r.usage.input_tokens > 0
    assert texts(mem.get_all(user_id="alice")) == {"Is vegetarian", "Lives in Berlin"}
    item = mem.get(r.results[0].id)
    assert item.role == "user" and item.actor_id == "Alice" and item.metadata == {"source": "chat"}
    assert [h.event for h in mem.history(item.id)] == ["ADD"]
    hits = mem.search("where does she live, Berlin?", user_id="alice")
    assert hits.results[0].memory == "Lives in Berlin"


def test_duplicate_is_none_without_a_decision_call(mem: Memory, llm: FakeLLM):
    llm.push(facts("Is vegetarian"))
    first = mem.add("I'm vegetarian", user_id="alice", infer=True)
    llm.push(facts("Is vegetarian"))  # only the extraction is queued: a decision call would fail
    r = mem.add("Did I mention I'm vegetarian?", user_id="alice", infer=True)
    assert [(e.event, e.id) for e in r.results] == [("NONE", first.results[0].id)]
    assert r.usage.llm_calls == 1 and len(llm.calls) == 2
    assert mem.get_all(user_id="alice").total == 1


def test_update_rewrites_and_keeps_history(mem: Memory, llm: FakeLLM):
    llm.push(facts("Works as a nurse"))
    old = mem.add("I work as a nurse", user_id="bob", infer=True).results[0]
    llm.push(
        facts("Works as a night nurse at Charite"),
        decisions({"fact": 0, "event": "UPDATE", "id": 0, "text": "Works as a night nurse at Charite"}),
    )
    r = mem.add("I do night shifts as a nurse at Charite now", user_id="bob", infer=True)
    assert [(e.event, e.id, e.previous_memory) for e in r.results] == [("UPDATE", old.id, "Works as a nurse")]
    assert r.usage.llm_calls == 2
    # The decision prompt saw the stored memory under a small integer, not its UUID.
    assert old.id not in llm.calls[-1].system and '0: "Works as a nurse"' in llm.calls[-1].system
    assert mem.get(old.id).memory == "Works as a night nurse at Charite"
    hist = mem.history(old.id)
    assert [(h.event, h.old_memory, h.new_memory) for h in hist][-1] == (
        "UPDATE",
        "Works as a nurse",
        "Works as a night nurse at Charite",
    )
    assert mem.search("night nurse Charite", user_id="bob").results[0].id == old.id


def test_contradiction_supersedes_and_adds_the_new_fact(mem: Memory, llm: FakeLLM):
    llm.push(facts("Lives in Berlin"))
    old = mem.add("I live in Berlin", user_id="carol", infer=True).results[0]
    llm.push(facts("Lives in Munich"), decisions({"fact": 0, "event": "DELETE", "id": 0}))
    r = mem.add("I moved to Munich last month", user_id="carol", infer=True)
    events = {e.event: e for e in r.results}
    assert set(events) == {"ADD", "DELETE"}
    assert events["DELETE"].id == old.id and events["ADD"].memory == "Lives in Munich"
    # Out of default reads, still readable, and it names what replaced it.
    assert texts(mem.get_all(user_id="carol")) == {"Lives in Munich"}
    assert {h.memory for h in mem.search("Berlin Munich lives", user_id="carol").results} == {
        "Lives in Munich"
    }
    superseded = mem.get(old.id)
    assert superseded.superseded_at is not None and superseded.superseded_by == events["ADD"].id
    assert "Lives in Berlin" in texts(mem.get_all(user_id="carol", include_superseded=True))
    assert [h.event for h in mem.history(old.id)] == ["ADD", "DELETE"]


def test_hard_delete_setting(tmp_path: Path, llm: FakeLLM):
    settings = make_settings(tmp_path / "d", hard_delete=True, llm_single_call=False)
    m = Memory(settings, embedder=FakeEmbedder(), llm=llm)
    try:
        llm.push(facts("Lives in Berlin"))
        old = m.add("I live in Berlin", user_id="dave", infer=True).results[0]
        llm.push(
            facts("Lives in Munich"),
            decisions(
                {"fact": 0, "event": "DELETE", "id": 0},
                {"fact": 0, "event": "ADD", "text": "Lives in Munich"},
            ),
        )
        m.add("I moved to Munich", user_id="dave", infer=True)
        with pytest.raises(NotFoundError):
            m.get(old.id)
        assert [h.event for h in m.history(old.id)] == ["ADD", "DELETE"]
        assert texts(m.get_all(user_id="dave", include_superseded=True)) == {"Lives in Munich"}
    finally:
        m.close()


def test_neighbours_stay_in_scope(mem: Memory, llm: FakeLLM):
    llm.push(facts("Lives in Berlin"))
    mem.add("I live in Berlin", user_id="erin", infer=True)
    llm.push(facts("Lives in Berlin"))  # same text, other user: an ADD, not a NONE against erin's row
    r = mem.add("I live in Berlin", user_id="frank", infer=True)
    assert [e.event for e in r.results] == ["ADD"] and len(llm.calls) == 2


def test_invalid_json_falls_back_to_verbatim_with_a_reason(mem: Memory, llm: FakeLLM):
    llm.push("I think the user is vegetarian", "sorry, no JSON")
    r = mem.add("I'm vegetarian, by the way", user_id="gina", infer=True)
    assert not r.inferred and "invalid JSON" in (r.reason or "")
    assert [(e.event, e.memory) for e in r.results] == [("ADD", "I'm vegetarian, by the way")]
    assert texts(mem.get_all(user_id="gina")) == {"I'm vegetarian, by the way"}


def test_without_llm_infer_is_verbatim_with_a_reason(tmp_path: Path):
    m = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder())
    try:
        r = m.add("I'm vegetarian", user_id="hal", infer=True)
        assert not r.inferred and r.reason and "llm" in r.reason.lower()
        assert r.results[0].memory == "I'm vegetarian"
    finally:
        m.close()


def test_nothing_worth_remembering(mem: Memory, llm: FakeLLM):
    llm.push(facts())
    r = mem.add("ok thanks, bye", user_id="ivy", infer=True)
    assert r.inferred and r.results == [] and r.warnings
    assert mem.get_all(user_id="ivy").total == 0


def test_procedural_memory(mem: Memory, llm: FakeLLM):
    llm.push("Task: deploy v2.\n1. Ran `make deploy` -> OK, build 1234.\nOpen: none.")
    r = mem.add(
        [
            {"role": "user", "content": "Deploy v2"},
            {"role": "assistant", "content": "Running make deploy"},
            {"role": "tool", "content": "OK build 1234"},
        ],
        agent_id="deployer",
        memory_type="procedural",
        infer=True,
    )
    assert r.inferred and len(r.results) == 1 and "build 1234" in r.results[0].memory
    item = mem.get(r.results[0].id)
    assert item.memory_type == "procedural" and item.agent_id == "deployer"


def test_agent_facts(mem: Memory, llm: FakeLLM):
    llm.push(facts("Is called Ada"))
    r = mem.add(
        [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I'm Ada."}],
        agent_id="ada",
        infer=True,
    )
    assert "facts about the agent itself" in llm.calls[0].system
    assert mem.get(r.results[0].id).role == "assistant"


def test_image_without_vision_warns(mem: Memory, llm: FakeLLM):
    llm.push(facts("Has a new puppy"))
    r = mem.add(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Meet my puppy"},
                    {"type": "image_url", "image_url": {"url": "https://example.org/p.jpg"}},
                ],
            }
        ],
        user_id="jo",
        infer=True,
    )
    assert r.inferred and [e.memory for e in r.results] == ["Has a new puppy"]
    assert any("image" in w for w in r.warnings)


def test_updated_target_gone_meanwhile_still_keeps_the_fact(mem: Memory, llm: FakeLLM):
    llm.push(facts("Likes green tea"))
    old = mem.add("I like green tea", user_id="kim", infer=True).results[0]

    def decide_after_delete(system: str, messages: list) -> dict:
        mem.delete(old.id)  # another client deletes the row while the LLM is thinking
        return decisions({"fact": 0, "event": "UPDATE", "id": 0, "text": "Likes green tea a lot"})

    llm.push(facts("Likes green tea very much"), decide_after_delete)
    r = mem.add("I really like green tea", user_id="kim", infer=True)
    assert [e.event for e in r.results] == ["ADD"]
    assert texts(mem.get_all(user_id="kim")) == {"Likes green tea a lot"}


def test_single_call_mode_is_the_default(tmp_path: Path, llm: FakeLLM):
    mem = Memory(make_settings(tmp_path / "single"), embedder=FakeEmbedder(), llm=llm)
    llm.push(facts("Lives in Berlin"))  # empty scope: plain extraction
    old = mem.add("I live in Berlin", user_id="lee", infer=True).results[0]
    llm.push({"facts": [{"text": "Lives in Munich", "event": "ADD", "deletes": [0]}]})
    r = mem.add("I moved to Munich", user_id="lee", infer=True)
    assert r.usage.llm_calls == 1 and '0: "Lives in Berlin"' in llm.calls[-1].system
    assert {(e.event, e.memory) for e in r.results} == {
        ("ADD", "Lives in Munich"),
        ("DELETE", "Lives in Berlin"),
    }
    assert mem.get(old.id).superseded_by == next(e.id for e in r.results if e.event == "ADD")
    assert texts(mem.get_all(user_id="lee")) == {"Lives in Munich"}
    mem.close()


def test_image_with_vision_is_described_and_not_warned_about(tmp_path: Path):
    llm = FakeLLM(["A red bicycle leaning on a wall.", facts("Bought a red bicycle")], supports_vision=True)
    m = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder(), llm=llm)
    try:
        r = m.add(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look what I bought"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    ],
                }
            ],
            user_id="max",
            infer=True,
        )
        assert r.inferred and [e.memory for e in r.results] == ["Bought a red bicycle"]
        assert r.warnings == [] and r.usage.llm_calls == 2
        assert "A red bicycle leaning on a wall." in llm.calls[1].system
    finally:
        m.close()
