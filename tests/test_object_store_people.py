"""What a person uses, on object storage (MEM0_MCP_STORE_URI, the S3 emulator): export and import
through the real CLI entry (a local store exported, imported under the URI, exported again: the
same lines), and the local page (list, scopes, delete and restore, the deleted view)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mem0_mcp.cli import main as cli
from mem0_mcp.cli import memories
from mem0_mcp.engine.memory import Memory
from mem0_mcp.models import Scope
from mem0_mcp.ui.app import PageConfig, create_app
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.s3 import S3Bucket
from tests.support.transfer import export, fill


def test_round_trip_through_object_storage(
    bucket: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in list(os.environ):
        if key.startswith("MEM0_MCP_"):
            monkeypatch.delenv(key)
    for name, value in bucket.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEM0_MCP_LLM_PROVIDER", "none")
    monkeypatch.setenv("MEM0_MCP_USER_ID", "alice")
    monkeypatch.setenv("MEM0_MCP_GRAPH_ENABLED", "true")
    monkeypatch.setattr(memories, "make_embedder", lambda settings: FakeEmbedder())
    fill(tmp_path / "local")
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(tmp_path / "local"))
    first = export(capsys, tmp_path / "one.jsonl")

    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(tmp_path / "node"))
    monkeypatch.setenv("MEM0_MCP_STORE_URI", bucket.uri())
    assert cli.main(["import", str(tmp_path / "one.jsonl")]) == 0
    assert (
        "imported 6 memories; 1 deleted memories' history; 5 entities, 3 relations" in capsys.readouterr().err
    )
    second = export(capsys, tmp_path / "two.jsonl")
    assert second[1:] == first[1:]
    assert {**json.loads(second[0]), "exported_at": ""} == {**json.loads(first[0]), "exported_at": ""}
    # Again: nothing new (the duplicate check reads the store under the URI).
    assert cli.main(["import", str(tmp_path / "one.jsonl")]) == 0
    assert "imported 0 memories; skipped 7 already stored" in capsys.readouterr().err


def test_the_local_page_on_object_storage(
    bucket: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in bucket.env.items():
        monkeypatch.setenv(name, value)
    uri = bucket.uri()
    writer = Memory(make_settings(tmp_path / "writer", store_uri=uri), embedder=FakeEmbedder())
    page = Memory(make_settings(tmp_path / "page", store_uri=uri), embedder=FakeEmbedder())
    try:
        tea = writer.add("Alice likes green tea", user_id="tester", infer=False).results[0].id
        writer.add("Bob plays chess", user_id="bob", infer=False)
        config = PageConfig(
            memory=page,
            secret="s3cret-page",
            default_scope=Scope(user_id="tester"),
            allowed_hosts=["testserver"],
        )
        client = TestClient(create_app(config))
        listed = client.get("/s3cret-page/").text
        assert "Alice likes green tea" in listed and "bob" in listed  # the picker lists both scopes
        gone = client.post(f"/s3cret-page/memory/{tea}/delete", data={"csrf": "s3cret-page"})
        assert "It can be restored from Deleted." in gone.text
        assert f'data-id="{tea}"' in client.get("/s3cret-page/", params={"view": "deleted"}).text
        back = client.post(f"/s3cret-page/memory/{tea}/restore", data={"csrf": "s3cret-page"})
        assert "Undone: the delete." in back.text
        assert [e.source for e in writer.history(tea)] == ["api", "person", "person"]
    finally:
        writer.close()
        page.close()
