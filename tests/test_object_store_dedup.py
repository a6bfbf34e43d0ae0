"""Duplicate checks across nodes on object storage (MEM0_MCP_STORE_URI): two ``Memory`` nodes
(separate data dirs, one URI on the moto S3 emulator) adding the same texts at the same moment
keep one memory per text and scope; ``mem0-mcp doctor`` lists and merges duplicates there."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import StoreError
from mem0_mcp.models import AddResult
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.s3 import S3Bucket

REFRESH = 0.5
TEXTS = [f"shared fact number {i}: the meeting room {i} has a blue door" for i in range(5)]


def node(data_dir: Path, uri: str, refresh: float = REFRESH) -> Memory:
    settings = make_settings(data_dir, store_uri=uri, store_refresh_seconds=refresh)
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


def test_a_node_with_a_stale_view_answers_with_the_earlier_memory(s3_env: S3Bucket, tmp_path: Path) -> None:
    """The race made deterministic: node b reads the table as it was a minute ago, so its check
    before the append misses a's memory; the check after it finds a's row and b's goes."""
    uri = s3_env.uri()
    a, b = node(tmp_path / "a", uri), node(tmp_path / "b", uri, refresh=60.0)
    try:
        b.add("warm-up: b reads the table from now on", user_id="w")
        first = a.add("the printer on floor 2 needs toner", user_id="u").results[0]
        assert first.event == "ADD"
        again = b.add("the printer on floor 2 needs toner", user_id="u").results
        assert [(e.event, e.id) for e in again] == [("NONE", first.id)]
        # In the other order too: a (current view) finds b's memory before it appends.
        second = b.add("the lift is out of order", user_id="u").results[0]
        assert second.event == "ADD"
        assert [(e.event, e.id) for e in a.add("the lift is out of order", user_id="u").results] == [
            ("NONE", second.id)
        ]
        reader = node(tmp_path / "c", uri)
        try:
            assert sorted(live_texts(reader).values()) == [1, 1]
            assert [h.event for h in reader.history(first.id)] == ["ADD"]
            assert reader.storage.history.ids_without_history([first.id, second.id]) == []
        finally:
            reader.close()
    finally:
        a.close()
        b.close()


def stored_again(memory: Memory, mid: str) -> str:
    """Append a copy of memory ``mid`` under a new id, with its ADD event, as a node does that
    stops between its append and the cross-node check (or as an add from before the check)."""
    import uuid

    import numpy as np

    from mem0_mcp.clock import now_iso
    from mem0_mcp.engine.rows import history_record

    row = memory.storage.vectors.get(mid)
    assert row is not None
    vector = np.asarray([row.pop("vector")], dtype=np.float32) if "vector" in row else None
    if vector is None:
        vector = np.asarray([FakeEmbedder().embed([row["memory"]])[0]], dtype=np.float32)
    now = now_iso()
    copy = {**row, "id": str(uuid.uuid4()), "created_at": now, "updated_at": now}
    memory.storage.vectors.add([copy], vector)
    memory.storage.history.add([history_record(copy, "ADD", None, copy["memory"], now, "api")])
    return str(copy["id"])


def run_doctor(memory: Memory, *, repair: bool) -> tuple[int, str]:
    import io

    from mem0_mcp.cli.doctor import doctor

    out = io.StringIO()
    code = doctor(memory.settings, repair=repair, out=out)
    return code, out.getvalue()


def test_doctor_lists_and_merges_duplicates_on_object_storage(s3_env: S3Bucket, tmp_path: Path) -> None:
    uri = s3_env.uri()
    a = node(tmp_path / "a", uri)
    try:
        keep = a.add("the spare key is under the flower pot", user_id="u").results[0].id
        other = a.add("the spare key is under the flower pot", user_id="v").results[0].id  # another scope
        a.add("unrelated: the bus leaves at nine", user_id="u")
        dup = stored_again(a, keep)

        code, text = run_doctor(a, repair=False)
        assert code == 1
        lines = text.strip().splitlines()
        assert len(lines) == 1 and keep in lines[0] and dup in lines[0] and other not in lines[0]
        assert "user_id=u" in lines[0] and "--repair" in lines[0]

        code, text = run_doctor(a, repair=True)
        assert code == 0, text
        assert "found: " in text and "repaired memory table: 1 duplicate" in text and "still:" not in text

        # The duplicate is superseded by the first stored, with history; the first is untouched
        # (seen by node a within the staleness bound: the doctor wrote through its own handle).
        eventually(lambda: (a.storage.vectors.get(dup) or {}).get("superseded_by") == keep)
        eventually(lambda: len(a.history(dup)) == 2)
        history = a.history(dup)
        assert [h.event for h in history] == ["ADD", "DELETE"] and history[-1].source == "doctor"
        assert [h.event for h in a.history(keep)] == ["ADD"]
        assert a.storage.vectors.get(other)["superseded_at"] is None
        assert run_doctor(a, repair=False) == (0, "no duplicate memories\n")
    finally:
        a.close()


def test_doctor_cannot_open_a_missing_bucket(s3_env: S3Bucket, tmp_path: Path) -> None:
    import io

    from mem0_mcp.cli.doctor import doctor

    settings = make_settings(tmp_path, store_uri="s3://no-such-bucket/prefix")
    assert doctor(settings, repair=False, out=io.StringIO()) == 2


def test_after_a_reset_the_same_text_is_added_again(s3_env: S3Bucket, tmp_path: Path) -> None:
    # The table's versions start anew after a reset: the check reads the new table, not the old.
    a = node(tmp_path / "a", s3_env.uri())
    try:
        for i in range(3):
            a.add(f"the same words, time {i}", user_id="u")
        a.reset()
        added = a.add("the same words, time 2", user_id="u").results
        assert [e.event for e in added] == ["ADD"]
        assert a.get(added[0].id).memory == "the same words, time 2"
    finally:
        a.close()


def test_the_version_read_is_the_new_tables_after_a_reset(s3_env: S3Bucket, tmp_path: Path) -> None:
    # A LanceDB handle serves its own version from memory; a reset starts version numbers anew.
    import pyarrow as pa

    from mem0_mcp.engine.cross_node import EarlierRows
    from mem0_mcp.stores.object_store import remote_store

    remote = remote_store(make_settings(tmp_path, store_uri=s3_env.uri()))
    assert remote is not None
    db = remote.connect()

    def made(prefix: str) -> None:
        tbl = db.create_table("memories", pa.table({"id": [f"{prefix}1"]}), mode="overwrite")
        for i in (2, 3):
            tbl.add(pa.table({"id": [f"{prefix}{i}"]}))

    made("old")
    earlier = EarlierRows(remote)
    assert [earlier.at_version(v).count_rows() for v in (3, 2)] == [3, 2]
    db.drop_table("memories")
    made("new")
    for version in (3, 2, 3):
        ids = earlier.at_version(version).to_table(columns=["id"]).column("id").to_pylist()
        assert ids == [f"new{i}" for i in range(1, version + 1)]
