"""An add's graph part written after the add returned (graph_background, the default): queued in the
graph log first, seen by the graph tools once written, taken over by the next process when the
one that queued it stopped. Real LanceDB, SQLite and Kùzu in tmp_path; a scripted LLM."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.graph.queue import QueuedAdd
from mem0_mcp.llm.base import LLMError
from mem0_mcp.models import Scope
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.graph_llm import EXTRACTION, RoutingLLM

ALICE = Scope(user_id="alice")


def open_memory(data_dir: Path, llm: RoutingLLM) -> Memory:
    settings = make_settings(data_dir, graph_enabled="true", graph_background=True)
    return Memory(settings, embedder=FakeEmbedder(), llm=llm)


@pytest.fixture
def llm() -> RoutingLLM:
    return RoutingLLM()


@pytest.fixture
def mem(tmp_path: Path, llm: RoutingLLM) -> Iterator[Memory]:
    m = open_memory(tmp_path / "data", llm)
    yield m
    m.close()


def held_extraction(llm: RoutingLLM) -> threading.Event:
    """The next extraction (alice works_at Google) waits until the returned event is set: the add
    must not wait for it."""
    release = threading.Event()
    reply = {
        "entities": [{"name": "Google", "type": "organization"}],
        "relations": [{"source": "I", "relation": "works_at", "destination": "Google"}],
    }
    llm.push(EXTRACTION, lambda _system: reply if release.wait(10) else {})
    return release


def relation_names(mem: Memory, name: str) -> set[tuple[str, str, str]]:
    assert mem.graph is not None
    view = mem.graph.get_entity(name, ALICE)
    return {(r["source"], r["relation"], r["destination"]) for r in view["relations"]}


def test_the_add_returns_first_and_the_graph_tools_see_its_relations(mem: Memory, llm: RoutingLLM) -> None:
    release = held_extraction(llm)
    r = mem.add("I work at Google.", user_id="alice", infer=False)
    assert r.graph_pending and r.relations == [] and not r.warnings
    [event] = r.results
    assert mem.graph is not None
    [(_, body)] = mem.graph.store.open_jobs()
    assert body["memory_ids"] == [event.id] and body["text"].endswith("I work at Google.")
    release.set()
    # get_entity waits for this process's queued work: the relation is there.
    assert relation_names(mem, "Google") == {("alice", "works_at", "Google")}
    assert mem.graph.store.open_jobs() == []
    [rel] = mem.graph.find_relations("where does alice work", ALICE, 5)
    assert rel.sources == [event.id]


def test_a_failed_extraction_is_logged_marked_done_and_the_memory_kept(mem: Memory, llm: RoutingLLM) -> None:
    llm.push(EXTRACTION, LLMError("the model is down"))
    r = mem.add("I work at Google.", user_id="alice", infer=False)
    assert r.graph_pending
    assert mem.graph is not None
    assert mem.graph.queue.settle(10)
    assert mem.graph.store.open_jobs() == []
    assert mem.get(r.results[0].id).memory == "I work at Google."


def test_work_a_stopped_process_left_queued_is_taken_over(tmp_path: Path, llm: RoutingLLM) -> None:
    """The first process queued the graph part and died before doing it: the next process with an
    LLM does it (once it is old enough that no live process is still on it)."""
    data_dir = tmp_path / "data"
    first = open_memory(data_dir, llm)
    stored = first.add("I work at Google.", user_id="alice", infer=False, use_graph=False)
    assert first.graph is not None
    first.graph.store.queue_job(
        QueuedAdd("user: I work at Google.", ALICE, (stored.results[0].id,), None).body()
    )
    first.close()
    llm.graph([("I", "works_at", "Google")], {"Google": "organization"})
    second = open_memory(data_dir, llm)
    assert second.graph is not None
    assert second.graph.queue.take_over_stale(older_than=0) == 1
    assert relation_names(second, "Google") == {("alice", "works_at", "Google")}
    assert second.graph.store.open_jobs() == []
    second.close()


def test_closing_lets_queued_work_finish(tmp_path: Path, llm: RoutingLLM) -> None:
    data_dir = tmp_path / "data"
    mem = open_memory(data_dir, llm)
    llm.graph([("I", "lives_in", "Zurich")], {"Zurich": "city"})
    assert mem.add("I live in Zurich.", user_id="alice", infer=False).graph_pending
    mem.close()
    again = open_memory(data_dir, RoutingLLM())
    assert relation_names(again, "Zurich") == {("alice", "lives_in", "Zurich")}
    assert again.graph is not None and again.graph.store.open_jobs() == []
    again.close()


def test_a_delete_right_after_the_add_leaves_no_relation_behind(mem: Memory, llm: RoutingLLM) -> None:
    """The add's graph part is still queued when the memory is deleted: it is written first, then
    removed with the memory, not written after the delete."""
    release = held_extraction(llm)
    r = mem.add("I work at Google.", user_id="alice", infer=False)
    assert r.graph_pending
    threading.Timer(0.2, release.set).start()
    mem.delete(r.results[0].id)
    assert mem.graph is not None
    assert mem.graph.queue.settle(10)
    assert mem.graph.store.counts() == {"entities": 0, "relations": 0}


def test_queued_work_skips_a_memory_another_process_deleted(tmp_path: Path, llm: RoutingLLM) -> None:
    """Process one queues the graph part of an add; process two deletes the memory before it is
    written: the queued work does not write the memory's relations back."""
    data_dir = tmp_path / "data"
    one = open_memory(data_dir, llm)
    release = held_extraction(llm)
    r = one.add("I work at Google.", user_id="alice", infer=False)
    two = open_memory(data_dir, RoutingLLM())
    two.delete(r.results[0].id)
    release.set()
    assert one.graph is not None and one.graph.queue.settle(10)
    assert one.graph.store.counts() == {"entities": 0, "relations": 0}
    assert one.graph.store.open_jobs() == []
    one.close()
    two.close()
