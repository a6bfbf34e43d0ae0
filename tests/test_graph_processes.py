"""Relations written by several processes on one data dir: none lost, none folded into another.

The fault this file reproduces (issue #15): three stdio servers each acknowledged 20 relations and
the graph then held 42. Not a store race: a mention with no exact name match was merged into the
stored entity whose NAME EMBEDDING came within the merge threshold, and with the bundled model
"process 1 node 5" and "process 2 node 5" embed at 0.93 (true synonyms such as "Acme Corp" and
"Acme Inc" at 0.94). The relation was then found "already there" (event NONE) and the write was gone.

The slow test is black-box (MCP tools over real ``mem0-mcp serve`` processes) so that it holds for
any graph store underneath.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from mem0_mcp.engine.memory import Memory
from mem0_mcp.graph.kuzu_db import DRIVERS
from mem0_mcp.graph.validation import may_merge_by_embedding
from mem0_mcp.models import EntityMerge, Scope
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.graph_llm import RoutingLLM
from tests.support.server import REPO, seed_models

ALICE = Scope(user_id="alice")
_DIGITS = str.maketrans("", "", "0123456789")


class DigitBlindEmbedder(FakeEmbedder):
    """Embeds names as if their numbers were not there: "node 1" and "node 2" embed alike (cosine
    1.0), the worst case of what the bundled model does (0.93)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return super().embed([t.translate(_DIGITS) for t in texts])


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    m = Memory(make_settings(tmp_path / "data", graph_enabled=True), embedder=DigitBlindEmbedder())
    yield m
    m.close()


def test_add_relation_never_folds_a_name_into_another(mem: Memory) -> None:
    assert mem.graph is not None
    for p in (1, 2, 3):
        for i in range(5):
            rel = mem.graph.add_relation(
                f"process {p} node {i}", "links_to", f"process {p} node {i + 1}", ALICE
            )
            assert rel["event"] == "ADD", rel
            assert (rel["source"], rel["destination"]) == (
                f"process {p} node {i}",
                f"process {p} node {i + 1}",
            )
            assert "merged" not in rel
    export = mem.graph.export(ALICE)
    assert len(export.edges) == 15 and len(export.nodes) == 18
    # The same call again is acknowledged as already there, and only then.
    assert (
        mem.graph.add_relation("Process 2 Node 3", "links_to", "process 2 node 4", ALICE)["event"] == "NONE"
    )


def test_delete_relation_names_its_entities_exactly(mem: Memory) -> None:
    assert mem.graph is not None
    mem.graph.add_relation("process 1 node 5", "links_to", "process 1 node 6", ALICE)
    assert mem.graph.delete_relation("process 2 node 5", "links_to", "process 2 node 6", ALICE) == 0
    assert mem.graph.delete_relation("process 1 node 5", "links_to", "process 1 node 6", ALICE) == 1


def test_add_relation_says_when_a_name_was_an_alias(tmp_path: Path) -> None:
    llm = RoutingLLM()
    m = Memory(make_settings(tmp_path / "data", graph_enabled=True), embedder=FakeEmbedder(), llm=llm)
    try:
        assert m.graph is not None
        m.graph.merge_threshold = 0.7
        llm.graph([("alice", "works_at", "Acme Corp")])
        m.add("I work at Acme Corp", user_id="alice")
        # Extraction merges a close name by embedding, and the add result says so.
        llm.graph([("alice", "likes", "Acme Corp Berlin")])
        r = m.add("I like Acme Corp Berlin", user_id="alice")
        [rel] = r.relations
        assert rel.destination == "Acme Corp"
        assert rel.merged == [EntityMerge(mention="Acme Corp Berlin", into="Acme Corp", by="embedding")]
        # add_relation matches the alias that merge left (a name, not an embedding) and says so too.
        out = m.graph.add_relation("alice", "visits", "acme corp berlin", ALICE)
        assert out["destination"] == "Acme Corp"
        assert out["merged"] == [{"mention": "acme corp berlin", "into": "Acme Corp", "by": "alias"}]
        # A mere difference of case or punctuation is the same name: nothing to report.
        assert "merged" not in m.graph.add_relation("Alice", "visits", "ACME CORP.", ALICE)
        # An explicit name that only embeds close is its own entity.
        assert m.graph.add_relation("alice", "visits", "Acme Corp Munich", ALICE)["destination"] == (
            "Acme Corp Munich"
        )
    finally:
        m.close()


def test_extraction_never_merges_names_whose_numbers_differ(tmp_path: Path) -> None:
    llm = RoutingLLM()
    m = Memory(make_settings(tmp_path / "data", graph_enabled=True), embedder=DigitBlindEmbedder(), llm=llm)
    try:
        assert m.graph is not None
        llm.graph([("alice", "uses", "Windows 10")])
        m.add("I use Windows 10", user_id="alice")
        llm.graph([("alice", "uses", "Windows 11")])
        r = m.add("I use Windows 11", user_id="alice")
        assert [(x.destination, x.event, x.merged) for x in r.relations] == [("Windows 11", "ADD", None)]
        # The same numbers: an embedding merge is still allowed (and reported).
        llm.graph([("alice", "uses", "windows-10")])
        r = m.add("I use windows-10", user_id="alice")
        assert [(x.destination, x.event) for x in r.relations] == [("Windows 10", "NONE")]
        assert r.relations[0].merged == [EntityMerge(mention="windows-10", into="Windows 10", by="embedding")]
    finally:
        m.close()


@pytest.mark.parametrize(
    ("a", "b", "allowed"),
    [
        ("process 1 node 5", "process 2 node 5", False),
        ("Windows 10", "Windows 11", False),
        ("Room 101", "Room 101 annex", True),
        ("v2 API", "v3 API", False),
        ("node 05", "node 5", True),  # one number, written two ways
        ("2023 report", "report", False),  # a number on one side only
        ("Plan A", "Plan B", False),  # names that differ only in a one-letter label
        ("Building A", "Building", False),
        ("Acme Corp", "Acme Inc", True),
        ("NYC", "New York", True),
        ("J. Smith", "John Smith", True),
    ],
)
def test_embedding_merge_guard(a: str, b: str, allowed: bool) -> None:
    assert may_merge_by_embedding(a, b) is allowed
    assert may_merge_by_embedding(b, a) is allowed


# ---------------------------------------------------------------- three real processes

WRITERS = 3
PER_WRITER = 20
ROUNDS = 3


def _server_params(data_dir: Path, driver: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    if os.environ.get("MEM0_MCP_MODEL_CACHE_DIR"):
        env["MEM0_MCP_MODEL_CACHE_DIR"] = os.environ["MEM0_MCP_MODEL_CACHE_DIR"]
    env.update(
        {
            "MEM0_MCP_DATA_DIR": str(data_dir),
            "MEM0_MCP_GRAPH_ENABLED": "true",
            "MEM0_MCP_GRAPH_DRIVER": driver,
            "MEM0_MCP_LLM_PROVIDER": "none",
            "MEM0_MCP_USER_ID": "tester",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
    )
    return StdioServerParameters(command=sys.executable, args=["-m", "mem0_mcp.cli.main", "serve"], env=env)


def _checked(result: Any) -> dict[str, Any]:
    text = " ".join(getattr(b, "text", "") for b in result.content)
    assert not result.is_error, text
    assert "locked" not in text.lower(), text
    return result.structured_content


async def _write(client: Client, p: int, user: str, acks: list[dict[str, Any]]) -> None:
    async def one(i: int) -> None:
        args = {
            "source": f"process {p} node {i}",
            "relation": "links_to",
            "destination": f"process {p} node {i + 1}",
            "user_id": user,
        }
        acks.append(_checked(await client.call_tool("add_relation", args))["relation"])

    async with anyio.create_task_group() as tg:
        for i in range(PER_WRITER):
            tg.start_soon(one, i)


async def _read_all(client: Client, user: str) -> dict[str, tuple[str, str, str]]:
    """Every relation of the user's graph reachable from the writers' names, by id."""
    seen: dict[str, tuple[str, str, str]] = {}
    for p in range(1, WRITERS + 1):
        for i in range(PER_WRITER + 1):
            view = _checked(
                await client.call_tool("get_entity", {"name": f"process {p} node {i}", "user_id": user})
            )
            for r in view["relations"]:
                seen[r["id"]] = (r["source"], r["relation"], r["destination"])
    return seen


@pytest.mark.slow
@pytest.mark.anyio  # here, not conftest's late marker: that one drops a parametrized test's params
@pytest.mark.parametrize("graph_driver", list(DRIVERS))
async def test_three_processes_write_relations_a_fourth_reads_them_all(
    tmp_path: Path, graph_driver: str
) -> None:
    if importlib.util.find_spec(DRIVERS[graph_driver][0]) is None:
        pytest.skip(f"graph_driver={graph_driver}: not installed (pip install {DRIVERS[graph_driver][1]})")
    data_dir = tmp_path / "data"
    seed_models(data_dir)
    params = _server_params(data_dir, graph_driver)
    expected = {
        (f"process {p} node {i}", "links_to", f"process {p} node {i + 1}")
        for p in range(1, WRITERS + 1)
        for i in range(PER_WRITER)
    }
    logs = [(tmp_path / f"writer{p}.log").open("w") for p in range(WRITERS + 1)]
    try:
        with anyio.fail_after(600):
            async with AsyncExitStack() as stack:
                writers = [
                    await stack.enter_async_context(Client(stdio_client(params, errlog=logs[p])))
                    for p in range(WRITERS)
                ]
                for round_ in range(ROUNDS):
                    user = f"round{round_}"
                    acks: list[dict[str, Any]] = []
                    async with anyio.create_task_group() as tg:
                        for p, client in enumerate(writers, start=1):
                            tg.start_soon(_write, client, p, user, acks)
                    assert len(acks) == WRITERS * PER_WRITER
                    assert {(a["source"], a["relation"], a["destination"]) for a in acks} == expected
                    assert all(a["event"] == "ADD" and "merged" not in a for a in acks), acks
                    # A fourth process, started after the writes, reads the graph they left.
                    async with Client(stdio_client(params, errlog=logs[WRITERS])) as reader:
                        seen = await _read_all(reader, user)
                    assert sorted(seen.values()) == sorted(expected), round_
                    assert len(seen) == len(expected)  # no relation twice under two ids
    finally:
        for log in logs:
            log.close()
