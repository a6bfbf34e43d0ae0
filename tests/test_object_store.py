"""Memories on object storage (MEM0_MCP_STORE_URI): an S3 emulator (moto) started by the tests,
the engine through ``Memory`` with the fake embedder, one or two "nodes" (separate data dirs)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from mem0_mcp.config import Settings
from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import ConfigError, NotFoundError
from mem0_mcp.stores.object_store import is_conflict, retry_conflicts, storage_options
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.s3 import SECRET_KEY, S3Bucket

REFRESH = 0.5  # the staleness bound the tests run with (seconds)


def node(data_dir: Path, uri: str, **overrides: object) -> Memory:
    settings = make_settings(data_dir, store_uri=uri, store_refresh_seconds=REFRESH, **overrides)
    return Memory(settings, embedder=FakeEmbedder())


def eventually(check, timeout: float = REFRESH * 4 + 2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not seen within the staleness bound"
        time.sleep(0.05)


def test_round_trip_through_memory(s3_env: S3Bucket, tmp_path: Path) -> None:
    uri = s3_env.uri()
    memory = node(tmp_path / "a", uri)
    try:
        added = memory.add("I like green tea in the morning", user_id="u")
        mid = added.results[0].id
        assert memory.settings.write_behind is False  # no journal on object storage
        hits = memory.search("green tea", user_id="u").results
        assert [h.id for h in hits] == [mid]
        assert memory.get(mid).memory == "I like green tea in the morning"
        memory.update(mid, text="I like black coffee in the morning")
        assert memory.get(mid).memory == "I like black coffee in the morning"
        memory.delete(mid)
        assert memory.search("coffee", user_id="u").results == []
        events = [h.event for h in memory.history(mid)]
        assert events == ["ADD", "UPDATE", "DELETE"]
        memory.restore(mid)
        assert memory.get(mid).memory == "I like black coffee in the morning"
        assert [h.event for h in memory.history(mid)][-1] == "RESTORE"
    finally:
        memory.close()
    # Nothing shared was written to the data dir: it lives under the URI.
    assert not (tmp_path / "a" / "lancedb").exists()
    assert not (tmp_path / "a" / "history.sqlite3").exists()
    again = node(tmp_path / "a2", uri)
    try:
        assert again.get(mid).memory == "I like black coffee in the morning"
        assert len(again.history(mid)) == 4
        again.reset()
        assert again.get_all(user_id="u").results == []
        with pytest.raises(NotFoundError):
            again.history(mid)
        from mem0_mcp.engine.store_meta import read_meta

        assert read_meta(again.settings) == {}
    finally:
        again.close()


def test_node_b_sees_node_a_within_the_bound(s3_env: S3Bucket, tmp_path: Path) -> None:
    uri = s3_env.uri()
    a, b = node(tmp_path / "a", uri), node(tmp_path / "b", uri)
    try:
        first = a.add("the cat sleeps on the red sofa", user_id="u").results[0].id
        # B's in-process copy is loaded now, before A's next add: it must follow it.
        eventually(lambda: [h.id for h in b.search("red sofa", user_id="u").results] == [first])
        second = a.add("the dog runs in the green park", user_id="u").results[0].id
        started = time.monotonic()
        eventually(lambda: [h.id for h in b.search("green park", user_id="u").results][:1] == [second])
        seen_after = time.monotonic() - started
        a.delete(first)
        eventually(lambda: first not in [h.id for h in b.search("red sofa", user_id="u").results])
        assert [h.event for h in b.history(first)] == ["ADD", "DELETE"]
        assert seen_after < REFRESH * 4 + 2
    finally:
        a.close()
        b.close()


def test_concurrent_updates_from_two_nodes_all_land(s3_env: S3Bucket, tmp_path: Path) -> None:
    uri = s3_env.uri()
    a, b = node(tmp_path / "a", uri), node(tmp_path / "b", uri)
    try:
        ids = [a.add(f"memory number {i} about topic {i}", user_id="u").results[0].id for i in range(4)]
        errors: list[BaseException] = []

        def work(memory: Memory, who: str) -> None:
            try:
                for round_ in range(3):
                    for mid in ids:
                        memory.update(mid, text=f"{who} wrote round {round_} of {mid}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(m, w)) for m, w in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for mid in ids:
            text = a.get(mid).memory
            assert text.endswith(f"round 2 of {mid}")
            # Every update's event is in the shared history (6 updates + the add), B's within
            # the bound.
            eventually(lambda mid=mid: len(a.history(mid)) == 7)
    finally:
        a.close()
        b.close()


def test_credentials_never_logged(s3_env: S3Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    memory = node(tmp_path / "a", s3_env.uri())
    try:
        memory.add("a memory that is logged about", user_id="u")
        memory.search("memory", user_id="u")
    finally:
        memory.close()
    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in repr(memory.storage.vectors.remote)


def test_shown_uri_has_no_credentials() -> None:
    settings = Settings(store_uri="s3://key:secret@bucket/prefix?token=abc")
    assert settings.store_shown == "s3://bucket/prefix"
    assert "secret" not in settings.store_shown and "abc" not in settings.store_shown
    assert Settings().store_shown == str(Settings().data_dir)


@pytest.mark.parametrize("uri", ["http://bucket/x", "ftp://b/p", "s3://", "/some/local/path"])
def test_bad_store_uri_names_the_setting_and_the_fix(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mem0_mcp.config import load_settings

    monkeypatch.setenv("MEM0_MCP_STORE_URI", uri)
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "MEM0_MCP_STORE_URI" in text and "s3://bucket/prefix" in text and "unset" in text


def test_storage_options_from_provider_variables() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ALLOW_HTTP": "true",
        "GOOGLE_SERVICE_ACCOUNT": "/g.json",
    }
    assert storage_options("s3://b/p", env) == {
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
        "aws_region": "eu-west-1",
        "aws_endpoint": "http://127.0.0.1:9",
        "allow_http": "true",
    }
    assert storage_options("gs://b/p", env) == {"google_service_account": "/g.json"}
    assert storage_options("az://c/p", {"AZURE_STORAGE_ACCOUNT_NAME": "acct"}) == {
        "azure_storage_account_name": "acct"
    }


def test_conflicts_are_retried_a_bounded_number_of_times() -> None:
    from lance.commit import CommitConflictError

    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise CommitConflictError("preempted by a concurrent transaction")
        return "done"

    assert retry_conflicts(flaky, what="test") == "done" and len(calls) == 3
    calls.clear()

    def always() -> None:
        calls.append(1)
        raise RuntimeError("Retryable commit conflict for version 7")

    with pytest.raises(RuntimeError):
        retry_conflicts(always, what="test", attempts=3)
    assert len(calls) == 3
    assert not is_conflict(ValueError("no such column"))
    assert is_conflict(RuntimeError("lance error: Incompatible transaction: This Append transaction is"))


async def test_health_names_the_store_without_credentials(
    s3_env: S3Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx2

    from tests.support.server import fake_server, http_settings, running_http

    caplog.set_level(logging.DEBUG)
    uri = s3_env.uri()
    server = fake_server(http_settings(tmp_path / "d", store_uri=uri, store_refresh_seconds=REFRESH))
    async with running_http(server, "http") as base, httpx2.AsyncClient(timeout=30) as http:
        reply = await http.get(f"{base}/health")
    assert reply.json()["store"] == uri
    assert SECRET_KEY not in reply.text and SECRET_KEY not in caplog.text


def test_store_metadata_is_shared_by_the_nodes(s3_env: S3Bucket, tmp_path: Path) -> None:
    from mem0_mcp.engine.store_meta import read_meta
    from mem0_mcp.errors import EmbedderMismatchError

    uri = s3_env.uri()
    a = node(tmp_path / "a", uri)
    try:
        a.add("the first memory records the embedder", user_id="u")
        assert read_meta(a.settings) == {"embedder_model": "fake-bow", "dimension": 64}
        assert not (tmp_path / "a" / "store.json").exists()
    finally:
        a.close()
    settings = make_settings(tmp_path / "b", store_uri=uri, store_refresh_seconds=REFRESH)
    with pytest.raises(EmbedderMismatchError, match="fake-other"):
        Memory(settings, embedder=FakeEmbedder(name="fake-other"))


def test_reindex_says_it_needs_a_data_dir(tmp_path: Path) -> None:
    # (doctor works on object storage: tests/test_object_store_dedup.py)
    from mem0_mcp.engine.reindex import reindex
    from mem0_mcp.errors import StoreError

    settings = make_settings(tmp_path, store_uri="s3://bucket/prefix")
    with pytest.raises(StoreError, match="MEM0_MCP_STORE_URI"):
        reindex(settings, embedder=FakeEmbedder())


def test_nodes_recording_the_store_metadata_at_once_all_succeed(s3_env: S3Bucket, tmp_path: Path) -> None:
    """The first adds of several nodes on a new store each record the embedder: their overwrites
    of ``store_meta`` race (found by tests/test_object_store_load.py: the losers' adds failed with
    "Retryable commit conflict")."""
    from mem0_mcp.engine.store_meta import read_meta, write_meta

    settings = make_settings(tmp_path, store_uri=s3_env.uri(), store_refresh_seconds=REFRESH)
    meta = {"embedder_model": "fake-bow", "dimension": 64}
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def record() -> None:
        try:
            start.wait()
            write_meta(settings, meta)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert read_meta(settings) == meta


def test_first_adds_of_several_nodes_on_a_new_store_all_land(s3_env: S3Bucket, tmp_path: Path) -> None:
    """Nodes starting together on a new store create what it lacks (the history table at start;
    the memory table, its indexes and the metadata record on the first add) at the same moment:
    LanceDB fails the losers (a commit conflict, an incompatible CreateIndex, a schema mismatch,
    a panic). Found by tests/test_object_store_load.py; this failed about one run in five."""
    uri = s3_env.uri()
    nodes: list[Memory] = []
    errors: list[BaseException] = []
    ids: list[str] = []
    start = threading.Barrier(6)

    def start_and_add(i: int) -> None:
        try:
            start.wait()
            memory = node(tmp_path / f"n{i}", uri)
            nodes.append(memory)
            ids.append(memory.add(f"node {i} writes its first memory", user_id="u").results[0].id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start_and_add, args=(i,)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for memory in nodes:
            eventually(lambda m=memory: {r.id for r in m.get_all(user_id="u").results} == set(ids))
            assert all(len(memory.history(i)) == 1 for i in ids)
    finally:
        for memory in nodes:
            memory.close()
