"""The planner with a scripted LLM: every event, the id mapping, the skips and the fallbacks."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from datetime import date

import numpy as np
import pytest

from mem0_mcp.llm.base import LLMError
from mem0_mcp.llm.decisions import Decision, FactPlan, parse_decisions, parse_fused
from mem0_mcp.llm.pipeline import MemoryPipeline, Neighbour, Plan, estimate_tokens
from mem0_mcp.llm.prompts import PromptSet
from mem0_mcp.llm.replies import ReplyLimits, UnusableReplyError
from mem0_mcp.models import Message
from tests.support.fake_llm import FakeLLM, decisions, facts

DIM = 32
UUID_A = "2f1c9a4e-0000-4000-8000-00000000000a"
UUID_B = "2f1c9a4e-0000-4000-8000-00000000000b"
UUID_C = "2f1c9a4e-0000-4000-8000-00000000000c"


def vec(text: str) -> np.ndarray:
    """Deterministic random unit vector per text: different texts are near-orthogonal."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class Store:
    """Scripted neighbours per fact text; records what was embedded."""

    def __init__(self, near: dict[str, list[Neighbour]] | None = None) -> None:
        self.near = near or {}
        self.embedded: list[list[str]] = []
        self.texts: dict[bytes, str] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.append(list(texts))
        out = np.stack([vec(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)
        for t, v in zip(texts, out, strict=True):
            self.texts[v.tobytes()] = t
        return out

    def neighbours(self, vectors: np.ndarray) -> list[list[Neighbour]]:
        return [list(self.near.get(self.texts[v.tobytes()], [])) for v in vectors]


@pytest.fixture(scope="module")
def prompts() -> PromptSet:
    return PromptSet.load()


def pipeline(llm, prompts, **kw) -> MemoryPipeline:
    return MemoryPipeline(llm, prompts, today=lambda: date(2026, 11, 26), **kw)


def run(p: MemoryPipeline, store: Store, messages, *, agent_mode=False, memory_type=None) -> Plan:
    msgs = [Message(role="user", content=messages)] if isinstance(messages, str) else messages
    return p.plan(
        msgs, agent_mode=agent_mode, memory_type=memory_type, embed=store.embed, neighbours=store.neighbours
    )


def test_no_neighbours_adds_all_without_decision_call(prompts):
    llm = FakeLLM([facts("Is vegetarian", "Lives in Leipzig")])
    store = Store()
    plan = run(pipeline(llm, prompts), store, "I'm vegetarian and I live in Leipzig.")
    assert plan.inferred and plan.reason is None
    assert [(a.event, a.text) for a in plan.actions] == [
        ("ADD", "Is vegetarian"),
        ("ADD", "Lives in Leipzig"),
    ]
    assert len(llm.calls) == 1
    assert plan.usage.llm_calls == 1 and plan.usage.input_tokens > 0 and plan.usage.output_tokens > 0
    # Facts are embedded once, in one batch, and those vectors are handed to the engine.
    assert store.embedded == [["Is vegetarian", "Lives in Leipzig"]]
    assert np.allclose(plan.actions[0].vector, vec("Is vegetarian"))
    call = llm.calls[0]
    assert call.json_output
    assert "2026-11-26" in call.system and "I'm vegetarian and I live in Leipzig." in call.system


def test_near_exact_duplicate_is_none_without_a_call(prompts):
    llm = FakeLLM([facts("Is vegetarian")])
    store = Store({"Is vegetarian": [Neighbour(UUID_A, "Is a vegetarian", 0.985)]})
    plan = run(pipeline(llm, prompts), store, "I'm vegetarian")
    assert [(a.event, a.memory_id, a.text) for a in plan.actions] == [("NONE", UUID_A, "Is a vegetarian")]
    assert len(llm.calls) == 1  # extraction only
    assert plan.usage.llm_calls == 1


def test_threshold_is_configurable(prompts):
    llm = FakeLLM([facts("Is vegetarian")])
    store = Store({"Is vegetarian": [Neighbour(UUID_A, "Is a vegetarian", 0.93)]})
    plan = run(pipeline(llm, prompts, dedup_threshold=0.9), store, "I'm vegetarian")
    assert plan.actions[0].event == "NONE" and len(llm.calls) == 1


def test_unrelated_neighbours_do_not_trigger_a_decision(prompts):
    llm = FakeLLM([facts("Plays the cello")])
    store = Store({"Plays the cello": [Neighbour(UUID_A, "Lives in Leipzig", 0.21)]})
    plan = run(pipeline(llm, prompts), store, "I play the cello")
    assert [a.event for a in plan.actions] == ["ADD"] and len(llm.calls) == 1


def test_one_decision_call_for_all_facts_with_integer_ids(prompts):
    llm = FakeLLM(
        [
            facts("Has a dog named Rex", "Works as a nurse at Charité", "Likes jazz", "Drinks tea"),
            decisions(
                {"fact": 0, "event": "NONE", "id": 0},
                {"fact": 1, "event": "UPDATE", "id": 1, "text": "Works as a night-shift nurse at Charité"},
                {"fact": 2, "event": "ADD", "text": "Likes jazz"},
            ),
        ]
    )
    store = Store(
        {
            "Has a dog named Rex": [Neighbour(UUID_A, "Has a dog called Rex", 0.9)],
            "Works as a nurse at Charité": [
                Neighbour(UUID_B, "Works as a nurse", 0.8),
                Neighbour(UUID_A, "Has a dog called Rex", 0.55),
            ],
            "Likes jazz": [Neighbour(UUID_C, "Likes classical music", 0.6)],
            "Drinks tea": [],
        }
    )
    plan = run(pipeline(llm, prompts), store, "...")
    assert len(llm.calls) == 2
    decision = llm.calls[1].system
    # Memories appear once each under small integers, never as UUIDs.
    assert UUID_A not in decision and UUID_B not in decision and UUID_C not in decision
    assert '0: "Has a dog called Rex"' in decision
    assert '1: "Works as a nurse"' in decision
    assert '2: "Likes classical music"' in decision
    assert decision.count("Has a dog called Rex") == 1
    # Only facts that need a decision are shown to the model.
    assert "Drinks tea" not in decision
    events = [(a.event, a.memory_id, a.text, a.previous) for a in plan.actions]
    assert ("NONE", UUID_A, "Has a dog called Rex", None) in events
    assert ("UPDATE", UUID_B, "Works as a night-shift nurse at Charité", "Works as a nurse") in events
    assert ("ADD", None, "Likes jazz", None) in events
    assert ("ADD", None, "Drinks tea", None) in events
    assert len(plan.actions) == 4
    # A rewritten text gets its own vector; facts reuse theirs; embedding is batched.
    update = next(a for a in plan.actions if a.event == "UPDATE")
    assert np.allclose(update.vector, vec("Works as a night-shift nurse at Charité"))
    assert store.embedded[1] == ["Works as a night-shift nurse at Charité"]
    assert plan.usage.llm_calls == 2


def test_invented_ids_are_ignored_and_logged(prompts, caplog):
    llm = FakeLLM(
        [
            facts("Lives in Munich", "Likes hiking"),
            decisions(
                {"fact": 0, "event": "UPDATE", "id": 7, "text": "Lives in Munich"},
                {"fact": 1, "event": "DELETE", "id": "abc"},
                {"fact": 5, "event": "ADD", "text": "ghost"},
                {"fact": 1, "event": "FROB", "id": 0},
                "not an object",
            ),
        ]
    )
    store = Store(
        {
            "Lives in Munich": [Neighbour(UUID_A, "Lives in Berlin", 0.7)],
            "Likes hiking": [Neighbour(UUID_B, "Likes walking", 0.7)],
        }
    )
    with caplog.at_level(logging.WARNING, logger="mem0_mcp.llm.pipeline"):
        plan = run(pipeline(llm, prompts), store, "...")
    assert [(a.event, a.text) for a in plan.actions] == [("ADD", "Lives in Munich"), ("ADD", "Likes hiking")]
    assert "invented memory id 7" in caplog.text
    assert "ghost" not in [a.text for a in plan.actions]


def test_contradiction_deletes_and_still_adds_the_new_fact(prompts):
    llm = FakeLLM(
        [
            facts("Lives in Munich"),
            decisions(
                {"fact": 0, "event": "DELETE", "id": 0},
                {"fact": 0, "event": "ADD", "text": "Lives in Munich"},
            ),
        ]
    )
    store = Store({"Lives in Munich": [Neighbour(UUID_A, "Lives in Berlin", 0.75)]})
    plan = run(pipeline(llm, prompts), store, "I moved to Munich")
    add = next(i for i, a in enumerate(plan.actions) if a.event == "ADD")
    delete = next(a for a in plan.actions if a.event == "DELETE")
    assert (
        delete.memory_id == UUID_A
        and delete.previous == "Lives in Berlin"
        and delete.text == "Lives in Berlin"
    )
    assert delete.superseded_by == add
    assert plan.actions[add].text == "Lives in Munich" and plan.actions[add].vector is not None


def test_delete_alone_still_keeps_the_new_truth(prompts):
    # Mem0 lost the new fact here (mem0 issue 4536): the model only said DELETE.
    llm = FakeLLM([facts("No longer has a car"), decisions({"fact": 0, "event": "DELETE", "id": 0})])
    store = Store({"No longer has a car": [Neighbour(UUID_A, "Has a car", 0.8)]})
    plan = run(pipeline(llm, prompts), store, "I sold my car")
    assert [(a.event, a.text) for a in plan.actions] == [
        ("ADD", "No longer has a car"),
        ("DELETE", "Has a car"),
    ]
    assert plan.actions[1].superseded_by == 0


def test_delete_superseded_by_an_update(prompts):
    llm = FakeLLM(
        [
            facts("Is vegan since 2025"),
            decisions(
                {"fact": 0, "event": "UPDATE", "id": 0, "text": "Is vegan since 2025"},
                {"fact": 0, "event": "DELETE", "id": 1},
            ),
        ]
    )
    store = Store(
        {
            "Is vegan since 2025": [
                Neighbour(UUID_A, "Is vegetarian", 0.8),
                Neighbour(UUID_B, "Eats fish on Fridays", 0.6),
            ]
        }
    )
    plan = run(pipeline(llm, prompts), store, "...")
    assert [(a.event, a.memory_id) for a in plan.actions] == [("UPDATE", UUID_A), ("DELETE", UUID_B)]
    assert plan.actions[1].superseded_by == 0
    assert np.allclose(plan.actions[0].vector, vec("Is vegan since 2025"))  # no re-embedding needed
    assert len(store.embedded) == 1


def test_one_memory_is_changed_once_per_add(prompts):
    llm = FakeLLM(
        [
            facts("Works at Siemens", "Works in Erlangen"),
            decisions(
                {"fact": 0, "event": "UPDATE", "id": 0, "text": "Works at Siemens"},
                {"fact": 1, "event": "UPDATE", "id": 0, "text": "Works in Erlangen"},
            ),
        ]
    )
    store = Store(
        {
            "Works at Siemens": [Neighbour(UUID_A, "Works as an engineer", 0.7)],
            "Works in Erlangen": [Neighbour(UUID_A, "Works as an engineer", 0.7)],
        }
    )
    plan = run(pipeline(llm, prompts), store, "...")
    assert [(a.event, a.text) for a in plan.actions] == [
        ("UPDATE", "Works at Siemens"),
        ("ADD", "Works in Erlangen"),
    ]


def test_repeated_facts_within_one_add_are_kept_once(prompts):
    llm = FakeLLM([facts("Likes tea", "likes  TEA", "Likes coffee")])
    plan = run(pipeline(llm, prompts), Store(), "...")
    assert [a.text for a in plan.actions] == ["Likes tea", "Likes coffee"]


def test_missing_decision_for_a_fact_adds_it(prompts):
    llm = FakeLLM([facts("Likes tea", "Has two sisters"), decisions({"fact": 0, "event": "NONE", "id": 0})])
    store = Store(
        {
            "Likes tea": [Neighbour(UUID_A, "Enjoys tea", 0.9)],
            "Has two sisters": [Neighbour(UUID_B, "Has a brother", 0.6)],
        }
    )
    plan = run(pipeline(llm, prompts), store, "...")
    assert [(a.event, a.text) for a in plan.actions] == [("NONE", "Enjoys tea"), ("ADD", "Has two sisters")]


def test_language_is_preserved(prompts):
    llm = FakeLLM([facts("Wohnt in Leipzig", "Trinkt gerne Kaffee")])
    plan = run(pipeline(llm, prompts), Store(), "Ich wohne in Leipzig und trinke gerne Kaffee.")
    assert [a.text for a in plan.actions] == ["Wohnt in Leipzig", "Trinkt gerne Kaffee"]
    system = llm.calls[0].system
    assert "language the person used" in system and "Never translate" in system
    assert "Ich wohne in Leipzig" in system


def test_language_rule_in_the_decision_prompt(prompts):
    llm = FakeLLM(
        [
            facts("Wohnt jetzt in München"),
            decisions({"fact": 0, "event": "UPDATE", "id": 0, "text": "Wohnt jetzt in München"}),
        ]
    )
    store = Store({"Wohnt jetzt in München": [Neighbour(UUID_A, "Wohnt in Leipzig", 0.7)]})
    plan = run(pipeline(llm, prompts), store, "Ich bin nach München gezogen.")
    assert "Never translate" in llm.calls[1].system
    assert plan.actions[0].text == "Wohnt jetzt in München"


def test_agent_mode_uses_the_agent_prompt_when_the_assistant_spoke(prompts):
    llm = FakeLLM([facts("Is called Ada"), facts("Likes tea")])
    msgs = [Message(role="user", content="What's your name?"), Message(role="assistant", content="I'm Ada.")]
    run(pipeline(llm, prompts), Store(), msgs, agent_mode=True)
    assert "facts about the agent itself" in llm.calls[0].system
    run(pipeline(llm, prompts), Store(), [Message(role="user", content="I like tea")], agent_mode=True)
    assert "facts about the user" in llm.calls[1].system


def test_speaker_names_reach_the_prompt(prompts):
    llm = FakeLLM([facts()])
    plan = run(pipeline(llm, prompts), Store(), [Message(role="user", content="I paint", name="Caroline")])
    assert "Caroline (user): I paint" in llm.calls[0].system
    assert plan.inferred and plan.actions == []


def test_procedural_memory_is_one_summary(prompts):
    summary = "Task: migrate the DB.\n1. Ran `alembic upgrade head` -> revision 4f2a.\nOpen: none."
    llm = FakeLLM([summary])
    store = Store()
    msgs = [
        Message(role="user", content="Migrate the database"),
        Message(role="assistant", content="Running alembic upgrade head"),
        Message(role="tool", content="INFO upgraded to 4f2a"),
    ]
    plan = run(pipeline(llm, prompts), store, msgs, agent_mode=True, memory_type="procedural")
    assert len(llm.calls) == 1 and not llm.calls[0].json_output
    assert "working record" in llm.calls[0].system and "INFO upgraded to 4f2a" in llm.calls[0].system
    assert [(a.event, a.text) for a in plan.actions] == [("ADD", summary)]
    assert plan.actions[0].vector is not None and plan.usage.llm_calls == 1


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


def test_images_are_described_with_vision(prompts):
    llm = FakeLLM(
        ["A golden retriever puppy on a red sofa.", facts("Has a golden retriever puppy")],
        supports_vision=True,
    )
    msgs = [
        Message(
            role="user",
            content=[
                {"type": "text", "text": "Meet my new puppy!"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        )
    ]
    plan = run(pipeline(llm, prompts), Store(), msgs)
    vision = llm.calls[0]
    image = vision.messages[0]["content"][0]
    assert image == {"type": "image", "media_type": "image/png", "data": PNG}
    assert not vision.json_output and "Meet my new puppy!" in vision.system
    assert "A golden retriever puppy on a red sofa." in llm.calls[1].system
    assert [a.text for a in plan.actions] == ["Has a golden retriever puppy"]
    assert plan.usage.llm_calls == 2 and not plan.warnings


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
        {"type": "image", "data": PNG, "mimeType": "image/jpeg"},
        {"type": "image_url", "image_url": "https://example.org/cat.jpg"},
    ],
)
def test_image_block_forms(prompts, block):
    llm = FakeLLM(["A cat.", facts()], supports_vision=True)
    run(pipeline(llm, prompts), Store(), [Message(role="user", content=[block])])
    sent = llm.calls[0].messages[0]["content"][0]
    assert sent.get("media_type") == "image/jpeg" or sent.get("url") == "https://example.org/cat.jpg"


def test_images_skipped_without_vision(prompts):
    llm = FakeLLM([facts("Has a new puppy")])
    msgs = [
        Message(
            role="user",
            content=[
                {"type": "text", "text": "Meet my new puppy!"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        )
    ]
    plan = run(pipeline(llm, prompts), Store(), msgs)
    assert len(llm.calls) == 1 and "base64" not in llm.calls[0].system
    assert any("image was skipped" in w for w in plan.warnings)
    assert [a.text for a in plan.actions] == ["Has a new puppy"]


def test_only_images_without_vision_gives_no_actions_and_a_warning(prompts):
    llm = FakeLLM([])
    msgs = [Message(role="user", content=[{"type": "image", "data": PNG, "mimeType": "image/png"}])]
    plan = run(pipeline(llm, prompts), Store(), msgs)
    assert plan.actions == [] and plan.warnings and not llm.calls


def test_json_in_fences_and_prose_is_parsed(prompts):
    llm = FakeLLM(['Sure! Here you go:\n```json\n{"facts": ["Likes tea",]}\n```\nAnything else?'])
    plan = run(pipeline(llm, prompts), Store(), "I like tea")
    assert [a.text for a in plan.actions] == ["Likes tea"] and len(llm.calls) == 1


def test_malformed_json_gets_one_repair(prompts):
    llm = FakeLLM(["facts: Likes tea", '{"facts": ["Likes tea"]}'])
    plan = run(pipeline(llm, prompts), Store(), "I like tea")
    assert plan.inferred and [a.text for a in plan.actions] == ["Likes tea"]
    assert len(llm.calls) == 2 and "facts: Likes tea" in llm.calls[1].text
    assert plan.usage.llm_calls == 2


def test_malformed_json_twice_falls_back_to_verbatim(prompts):
    llm = FakeLLM(["no json here", "still none"])
    plan = run(pipeline(llm, prompts), Store(), "I like tea")
    assert not plan.inferred and plan.actions == []
    assert "invalid JSON after one repair" in (plan.reason or "")
    assert plan.usage.llm_calls == 2


def test_wrong_shape_counts_as_malformed(prompts):
    llm = FakeLLM(['{"memories": ["x"]}', '{"facts": "x"}'])
    plan = run(pipeline(llm, prompts), Store(), "I like tea")
    assert not plan.inferred and plan.reason


def test_llm_error_falls_back(prompts):
    llm = FakeLLM([LLMError("HTTP 503: overloaded")])
    plan = run(pipeline(llm, prompts), Store(), "I like tea")
    assert not plan.inferred and "HTTP 503" in (plan.reason or "") and plan.usage.llm_calls == 0


def test_no_llm_falls_back(prompts):
    plan = run(pipeline(None, prompts), Store(), "I like tea")
    assert not plan.inferred and "no LLM" in (plan.reason or "") and plan.actions == []


def test_failed_decision_adds_the_facts_with_a_warning(prompts):
    llm = FakeLLM([facts("Likes tea"), "garbage", "more garbage"])
    store = Store({"Likes tea": [Neighbour(UUID_A, "Likes coffee", 0.7)]})
    plan = run(pipeline(llm, prompts), store, "I like tea")
    assert plan.inferred and [(a.event, a.text) for a in plan.actions] == [("ADD", "Likes tea")]
    assert any("update decision failed" in w for w in plan.warnings)
    assert plan.usage.llm_calls == 3


def test_long_conversations_are_chunked(prompts):
    budget = 600
    turns = [Message(role="user", content=f"Turn {i}: " + "blah " * 60) for i in range(30)]
    replies = [lambda system, messages: {"facts": [f"fact from chunk {system.count('Turn ')}"]}] * 40
    llm = FakeLLM(replies)
    p = pipeline(llm, prompts, token_budget=budget)
    plan = run(p, Store(), turns)
    assert len(llm.calls) > 1
    seen = []
    for call in llm.calls:
        assert estimate_tokens(call.text) <= budget + 50  # the short user instruction is extra
        seen += [int(t.split(":")[0]) for t in call.system.split("Turn ")[1:]]
    assert seen == list(range(30))  # every turn is seen exactly once, in order
    assert plan.usage.llm_calls == len(llm.calls)
    assert len(plan.actions) >= 1


def test_a_single_huge_message_is_split(prompts):
    llm = FakeLLM([facts()] * 20)
    text = " ".join(f"word{i}" for i in range(3000))
    run(pipeline(llm, prompts, token_budget=800), Store(), text)
    assert len(llm.calls) > 1
    joined = " ".join(c.system for c in llm.calls)
    assert "word0 " in joined and "word2999" in joined
    assert all("user: " in c.system for c in llm.calls)  # each chunk still names the speaker
    assert "user: (continued) " in llm.calls[-1].system
    for call in llm.calls:
        assert estimate_tokens(call.text) <= 800 + 50


# --------------------------------------------------------------------------- single-call mode


def test_single_call_on_an_empty_scope_is_plain_extraction(prompts):
    llm = FakeLLM([facts("Likes tea")])
    plan = run(pipeline(llm, prompts, single_call=True), Store(), "I like tea")
    assert [(a.event, a.text) for a in plan.actions] == [("ADD", "Likes tea")]
    assert len(llm.calls) == 1 and "The conversation:" in llm.calls[0].system
    assert "Stored memories" not in llm.calls[0].system


def test_single_call_extracts_and_decides_in_one_call(prompts):
    llm = FakeLLM(
        [
            {
                "facts": [
                    {"text": "Lives in Munich", "event": "ADD", "deletes": [2]},
                    {"text": "Works as a night nurse at Charite", "event": "UPDATE", "id": 0},
                    {"text": "Has a dog called Rex", "event": "NONE", "id": 1},
                    {"text": "Plays chess", "event": "UPDATE", "id": 9},  # invented id: becomes an ADD
                    "Likes jazz",
                ]
            }
        ]
    )
    msg = "I moved to Munich. I do night shifts at Charite. Rex says hi."
    store = Store(
        {
            msg: [
                Neighbour(UUID_A, "Lives in Berlin", 0.31),
                Neighbour(UUID_B, "Works as a nurse", 0.6),
                Neighbour(UUID_C, "Has a dog called Rex", 0.5),
            ]
        }
    )
    plan = run(pipeline(llm, prompts, single_call=True), store, msg)
    assert len(llm.calls) == 1 and plan.usage.llm_calls == 1
    system = llm.calls[0].system
    # Shown under small integers in similarity order, regardless of the similarity floor.
    assert '0: "Works as a nurse"' in system and '2: "Lives in Berlin"' in system
    assert UUID_A not in system
    events = [(a.event, a.memory_id, a.text) for a in plan.actions]
    assert events == [
        ("ADD", None, "Lives in Munich"),
        ("DELETE", UUID_A, "Lives in Berlin"),
        ("UPDATE", UUID_B, "Works as a night nurse at Charite"),
        ("NONE", UUID_C, "Has a dog called Rex"),
        ("ADD", None, "Plays chess"),
        ("ADD", None, "Likes jazz"),
    ]
    assert plan.actions[1].superseded_by == 0
    assert all(a.vector is not None for a in plan.actions if a.event in ("ADD", "UPDATE"))


def test_single_call_catches_a_duplicate_the_model_missed(prompts):
    llm = FakeLLM([{"facts": [{"text": "Likes green tea", "event": "ADD"}]}])
    store = Store(
        {
            "I like green tea": [Neighbour(UUID_A, "Likes green tea!", 0.8)],
            "Likes green tea": [Neighbour(UUID_A, "Likes green tea!", 0.99)],
        }
    )
    plan = run(pipeline(llm, prompts, single_call=True), store, "I like green tea")
    assert [(a.event, a.memory_id) for a in plan.actions] == [("NONE", UUID_A)]


def test_single_call_bad_json_falls_back(prompts):
    llm = FakeLLM(["nope", "still nope"])
    store = Store({"I like tea": [Neighbour(UUID_A, "Likes coffee", 0.6)]})
    plan = run(pipeline(llm, prompts, single_call=True), store, "I like tea")
    assert not plan.inferred and plan.usage.llm_calls == 2


def test_single_call_keeps_the_language_rule(prompts):
    llm = FakeLLM([{"facts": [{"text": "Wohnt in München", "event": "ADD", "deletes": [0]}]}])
    store = Store({"Ich wohne jetzt in München": [Neighbour(UUID_A, "Wohnt in Leipzig", 0.6)]})
    plan = run(pipeline(llm, prompts, single_call=True), store, "Ich wohne jetzt in München")
    assert "Never translate" in llm.calls[0].system
    assert [a.text for a in plan.actions] == ["Wohnt in München", "Wohnt in Leipzig"]


def test_single_call_not_used_for_agent_facts(prompts):
    llm = FakeLLM([facts("Is called Ada")])
    msgs = [Message(role="user", content="Name?"), Message(role="assistant", content="I'm Ada.")]
    store = Store({"I'm Ada.": [Neighbour(UUID_A, "Speaks French", 0.2)]})
    run(pipeline(llm, prompts, single_call=True), store, msgs, agent_mode=True)
    assert "facts about the agent itself" in llm.calls[0].system


def test_always_decide_is_the_plain_two_call_pipeline(prompts):
    llm = FakeLLM([facts("Likes tea"), decisions({"fact": 0, "event": "NONE", "id": 0})])
    store = Store({"Likes tea": [Neighbour(UUID_A, "Likes tea", 1.0)]})
    plan = run(pipeline(llm, prompts, always_decide=True), store, "I like tea")
    assert len(llm.calls) == 2 and [a.event for a in plan.actions] == ["NONE"]


def test_a_broken_custom_prompt_falls_back_with_the_reason(tmp_path):
    (tmp_path / "fact_extraction.md").write_text("{{messages}} for {{speaker}}")
    llm = FakeLLM([])
    plan = run(pipeline(llm, PromptSet.load(tmp_path)), Store(), "I like tea")
    assert not plan.inferred and "speaker" in (plan.reason or "") and not llm.calls


# --------------------------------------------------------------------------- parsing, typed


def test_parse_decisions_gives_typed_decisions_keyed_by_fact_and_drops_inventions(caplog):
    undecided = [FactPlan(4, "likes tea", []), FactPlan(7, "lives in Oslo", [])]
    raw = [
        {"fact": 0, "event": "update", "id": "1", "text": "  likes  green tea "},
        {"fact": 1, "event": "NONE", "id": 0},
        {"fact": 1, "event": "ADD", "text": ""},
        {"fact": 1, "event": "DELETE", "id": 9},  # no memory 9 was shown
        {"fact": 5, "event": "ADD"},  # no fact 5
        {"fact": 0, "event": "MERGE", "id": 0},
        "not an object",
    ]
    with caplog.at_level(logging.WARNING):
        out = parse_decisions(raw, undecided, 2, ReplyLimits())
    assert out == {
        4: [Decision("UPDATE", 1, "likes green tea")],
        7: [Decision("NONE", 0, None), Decision("ADD", None, None)],
    }
    assert "invented memory id 9" in caplog.text and "unknown event 'MERGE'" in caplog.text
    with pytest.raises(LLMError):
        parse_decisions({"fact": 0}, undecided, 2, ReplyLimits())


def test_parse_fused_merges_repeated_facts_and_pools_their_decisions():
    shown = [Neighbour(UUID_A, "works at Google", 0.8), Neighbour(UUID_B, "likes tea", 0.9)]
    raw = [
        "Moved to Berlin",
        {"text": "Works at Siemens", "event": "UPDATE", "id": 0},
        {"text": "works  at siemens", "deletes": [1, 7]},
        {"event": "NONE", "id": 1},
        {"text": "plain", "event": "SHRUG"},
    ]
    reply = parse_fused(raw, shown, ReplyLimits())
    assert reply.facts == ["Moved to Berlin", "Works at Siemens", "likes tea", "plain"]
    assert reply.decisions == {
        1: [Decision("UPDATE", 0, "Works at Siemens"), Decision("DELETE", 1)],
        2: [Decision("NONE", 1, "likes tea")],
    }
    with pytest.raises(UnusableReplyError):
        parse_fused([{"text": "ok"}, 3], shown, ReplyLimits())
    with pytest.raises(UnusableReplyError):
        parse_fused(["a", "b", "c"], shown, ReplyLimits(max_facts=2))
