"""Duplicate checks across nodes on object storage (MEM0_MCP_STORE_URI): two ``Memory`` nodes
(separate data dirs, one URI on the moto S3 emulator) adding the same texts at the same moment
keep one memory per text and scope; ``mem0-mcp doctor`` lists and merges duplicates there."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import StoreError
from mem0_mcp.models import AddResult
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.s3 import S3Bucket, s3_bucket

REFRESH = 0.5
TEXTS = [f"shared fact number {i}: the meeting room {i} has a blue door" for i in range(5)]


@pytest.fixture(scope="module")
def bucket() -> Iterator[S3Bucket]:
    with s3_bucket() as b:
        yield b


@pytest.fixture
def s3_env(bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    for name, value in bucket.env.items():
        monkeypatch.setenv(name, value)
    return bucket


def node(data_dir: Path, uri: str) -> Memory:
    settings = make_settings(data_dir, store_uri=uri, store_refresh_seconds=REFRESH)
    return Memory(settings, embedder=FakeEmbedder())


def eventually(check, timeout: float = REFRESH * 4 + 2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not seen within the staleness bound"
        time.sleep(0.05)


def events_of(memory: Memory, mid: str) -> list[str] | None:
    """The history events of a memory; None while this node's view lags another's add (within
    the staleness bound a node may see a row before its history)."""
    try:
        return [h.event for h in memory.history(mid)]
    except StoreError:
        return None


def race(nodes: list[Memory], texts: list[str], threads_per_node: int) -> list[AddResult]:
    """Every thread adds every text to scope u, all starting at once; the results."""
    barrier = threading.Barrier(len(nodes) * threads_per_node)
    results: list[AddResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(memory: Memory, offset: int) -> None:
        try:
            barrier.wait()
            for k in range(len(texts)):
                result = memory.add(texts[(k + offset) % len(texts)], user_id="u")
                with lock:
                    results.append(result)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(m, j % 2)) for m in nodes for j in range(threads_per_node)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == [], [str(e) for e in errors]
    return results


def live_texts(memory: Memory) -> Counter[str]:
    rows = memory.storage.vectors.query("user_id = 'u' AND superseded_at IS NULL", columns=("memory",))
    return Counter(r["memory"] for r in rows)


def test_two_nodes_adding_the_same_texts_keep_one_each(
    s3_env: S3Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mem0_mcp")
    uri = s3_env.uri()
    a, b = node(tmp_path / "a", uri), node(tmp_path / "b", uri)
    try:
        # Each node made its first write (the table, the store metadata) before the race.
        for i, memory in enumerate((a, b)):
            memory.add(f"warm-up number {i} of a node", user_id="w")
        results = race([a, b], TEXTS, threads_per_node=3)
        # Read by a node opened now: a's and b's reads may lag the other's deletes by the bound.
        reader = node(tmp_path / "c", uri)
        stored = live_texts(reader)
        assert set(stored) == set(TEXTS)
        duplicates = sum(n - 1 for n in stored.values())
        assert duplicates == 0, f"{duplicates} duplicates stored: {stored}\n{caplog.text}"
        # Every add answered with the id that survived, ADD once per text, NONE otherwise.
        live = {
            r["memory"]: r["id"]
            for r in reader.storage.vectors.query("user_id = 'u'", columns=("id", "memory"))
        }
        reader.close()
        events = Counter((e.memory, e.event) for r in results for e in r.results)
        for text in TEXTS:
            assert events[(text, "ADD")] == 1
            assert events[(text, "NONE")] == 6 - 1
        assert {e.id for r in results for e in r.results} == set(live.values())
        # The history says one ADD per surviving memory, nothing about the rows that lost.
        for mid in live.values():
            for memory in (a, b):
                eventually(lambda memory=memory, mid=mid: events_of(memory, mid) == ["ADD"])
    finally:
        a.close()
        b.close()
