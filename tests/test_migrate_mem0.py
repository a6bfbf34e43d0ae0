"""``mem0-mcp import --from mem0``: Mem0's get_all() output (both shapes) and OpenMemory's backup
(the zip, memories.json, memories.jsonl.gz), through the real CLI entry with a fake embedder.
The files follow mem0ai/mem0's code: Memory._get_all_from_vector_store / MemoryClient.get_all and
openmemory/api/app/routers/backup.py."""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mem0_mcp.cli import main as cli
from mem0_mcp.cli import memories
from tests.support.engine import FakeEmbedder


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MEM0_MCP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MEM0_MCP_LLM_PROVIDER", "none")
    monkeypatch.setenv("MEM0_MCP_USER_ID", "alice")
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(memories, "make_embedder", lambda settings: FakeEmbedder())


def listed(capsys: pytest.CaptureFixture[str], *scope: str) -> list[dict[str, Any]]:
    assert cli.main(["list", *scope, "--json"]) == 0
    return sorted(json.loads(capsys.readouterr().out)["results"], key=lambda r: r["memory"])


def mem0_entry(i: str, text: str, **extra: Any) -> dict[str, Any]:
    """An entry as Memory.get_all() builds it (payload keys promoted, the rest in metadata)."""
    return {
        "id": i,
        "memory": text,
        "hash": "h" + i,
        "created_at": "2024-07-20T01:02:03.456789-07:00",
        "updated_at": None,
        "user_id": "someone-else",
        **extra,
    }


def test_get_all_results_is_imported_once_with_times_and_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = {
        "results": [
            mem0_entry("a1", "Likes tea", metadata={"topic": "drinks"}, categories=["food"]),
            mem0_entry("a2", "Lives in Porto", updated_at="2024-08-01T00:00:00Z", role="user"),
            {"id": "a3", "memory": "", "created_at": "2024-01-01T00:00:00Z"},
            mem0_entry("a4", "Bad time", created_at="last tuesday"),
        ]
    }
    path = tmp_path / "get_all.json"
    path.write_text(json.dumps(answer))
    assert cli.main(["import", "--from", "mem0", "--user-id", "bob", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 3: memory 3: memory: empty" in err
    assert "line 4: memory 4: created_at: cannot parse 'last tuesday'" in err
    assert "imported 2 memories" in err and "2 bad lines" in err and "Traceback" not in err
    rows = listed(capsys, "--user-id", "bob")
    assert [r["memory"] for r in rows] == ["Likes tea", "Lives in Porto"]
    tea, porto = rows
    meta = {"topic": "drinks", "imported_from": "mem0", "mem0_id": "a1", "categories": ["food"]}
    assert tea["metadata"] == meta
    assert tea["created_at"] == "2024-07-20T08:02:03.456789Z" == tea["updated_at"]
    assert porto["updated_at"] == "2024-08-01T00:00:00.000000Z" and porto["user_id"] == "bob"
    assert cli.main(["history", porto["id"], "--json"]) == 0
    assert [h["event"] for h in json.loads(capsys.readouterr().out)] == ["ADD"]

    # The same file again adds nothing; into another scope, it is that scope's memories.
    assert cli.main(["import", "--from", "mem0", "--user-id", "bob", str(path)]) == 1
    assert "imported 0 memories; skipped 2 already stored" in capsys.readouterr().err
    assert cli.main(["import", "--from", "mem0", "--agent-id", "bot", str(path)]) == 1
    assert "imported 2 memories" in capsys.readouterr().err
    assert len(listed(capsys, "--user-id", "bob")) == 2


def test_bare_list_of_older_mem0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v1.json"
    path.write_text(json.dumps([mem0_entry("b1", "Plays chess"), "not an object"]))
    assert cli.main(["import", "--from", "mem0", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 2: memory 2: " in err and "imported 1 memories" in err
    (row,) = listed(capsys)  # the default user (MEM0_MCP_USER_ID)
    assert row["memory"] == "Plays chess" and row["user_id"] == "alice" and row["metadata"]["mem0_id"] == "b1"


def openmemory_backup() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """memories.json and the lines of memories.jsonl.gz as backup.py's export writes them."""
    cats = [{"id": "c1", "name": "work", "description": None, "created_at": None, "updated_at": None}]
    mems = []
    for i, (text, state) in enumerate(
        [("Works at Acme", "active"), ("Old job at Initech", "archived"), ("Secret", "deleted"),
         ("Paused note", "paused")]
    ):  # fmt: skip
        mems.append(
            {
                "id": f"00000000-0000-0000-0000-00000000000{i}",
                "user_id": "u-uuid",
                "app_id": "app-uuid",
                "content": text,
                "metadata": {"source_app": "openmemory"} if i == 0 else None,
                "state": state,
                "created_at": f"2025-0{i + 1}-01T10:00:00+00:00",
                "updated_at": f"2025-0{i + 1}-02T10:00:00+00:00",
                "archived_at": None,
                "deleted_at": None,
                "category_ids": ["c1"] if i == 0 else [],
            }
        )
    whole = {"user": {"user_id": "alice"}, "apps": [], "categories": cats, "memories": mems,
             "memory_categories": [], "status_history": [], "access_controls": [],
             "export_meta": {"version": "1"}}  # fmt: skip
    lines = [
        {k: m[k] for k in ("id", "content", "created_at", "updated_at", "state")}
        | {"metadata": m["metadata"] or {}, "app": "cursor", "categories": ["work"] if m is mems[0] else []}
        for m in mems
    ]
    return whole, lines


def test_openmemory_zip_leaves_out_deleted_and_archived_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole, lines = openmemory_backup()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("memories.json", json.dumps(whole, indent=2))
        zf.writestr("memories.jsonl.gz", gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode()))
    path = tmp_path / "memories_export_alice.zip"
    path.write_bytes(buf.getvalue())
    assert cli.main(["import", "--from", "mem0", "--user-id", "alice", str(path)]) == 0
    err = capsys.readouterr().err
    assert "imported 2 memories; left out 2 deleted or archived" in err
    rows = listed(capsys, "--user-id", "alice")
    assert [r["memory"] for r in rows] == ["Paused note", "Works at Acme"]
    assert rows[1]["metadata"] == {
        "source_app": "openmemory",
        "imported_from": "openmemory",
        "mem0_id": "00000000-0000-0000-0000-000000000000",
        "categories": ["work"],
    }
    assert rows[0]["metadata"]["mem0_state"] == "paused"
    assert rows[1]["created_at"] == "2025-01-01T10:00:00.000000Z"

    assert cli.main(["import", "--from", "mem0", "--include-inactive", str(path)]) == 0
    assert "imported 2 memories; skipped 2 already stored" in capsys.readouterr().err
    states = {r["memory"]: r["metadata"].get("mem0_state") for r in listed(capsys, "--user-id", "alice")}
    assert states == {
        "Works at Acme": None,
        "Old job at Initech": "archived",
        "Secret": "deleted",
        "Paused note": "paused",
    }


def test_openmemory_jsonl_gz_alone_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines = openmemory_backup()
    text = json.dumps(lines[0]) + "\n{broken\n" + json.dumps({**lines[3], "metadata": "x"}) + "\n"
    path = tmp_path / "memories.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert cli.main(["import", "--from", "mem0", "--run-id", "r1", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 2: not JSON" in err and "line 3: memory 3: metadata" in err and "imported 1 memories" in err
    (row,) = listed(capsys, "--run-id", "r1")
    assert row["metadata"]["app"] == "cursor" and row["metadata"]["imported_from"] == "openmemory"

    path.write_text(json.dumps({"entities": []}))
    assert cli.main(["import", "--from", "mem0", str(path)]) == 1
    err = capsys.readouterr().err
    assert "without 'results' or 'memories'" in err and err.count("\n") == 1
