"""The people commands through the real CLI entry (``main([...])``), on a tmp data dir with the
fake embedder: tables by default, the engine's JSON with --json, clean errors, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mem0_mcp.cli import main as cli
from mem0_mcp.cli import memories
from tests.support.engine import FakeEmbedder


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("MEM0_MCP_"):
            monkeypatch.delenv(key)
    data = tmp_path / "data"
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(data))
    monkeypatch.setenv("MEM0_MCP_LLM_PROVIDER", "none")
    monkeypatch.setenv("MEM0_MCP_USER_ID", "alice")
    monkeypatch.setenv("MEM0_MCP_SEARCH_THRESHOLD", "0")
    monkeypatch.setattr(memories, "make_embedder", lambda settings: FakeEmbedder())
    return data


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add(capsys: pytest.CaptureFixture[str], text: str, *flags: str) -> str:
    code, out, _ = run(capsys, "add", "--json", *flags, text)
    assert code == 0
    return str(json.loads(out)["results"][0]["id"])


def test_add_list_search_get_in_the_default_scope(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "add", "Prefers dark roast coffee", "--metadata", '{"topic": "food"}')
    assert code == 0 and "ADD" in out and "Prefers dark roast coffee" in out
    # Plain text, no escape codes: stdout is not a terminal here.
    assert "\x1b[" not in out
    add(capsys, "Lives in Lisbon")
    add(capsys, "Works on robots", "--user-id", "bob")

    code, out, _ = run(capsys, "list")
    assert code == 0 and "memories of user_id=alice (1-2 of 2)" in out
    assert "Lives in Lisbon" in out and "robots" not in out
    code, out, _ = run(capsys, "list", "--user-id", "bob", "--json")
    page = json.loads(out)
    assert page["total"] == 1 and page["results"][0]["memory"] == "Works on robots"

    code, out, _ = run(capsys, "search", "--json", "--limit", "1", "coffee", "roast")
    found = json.loads(out)["results"]
    assert code == 0 and [r["memory"] for r in found] == ["Prefers dark roast coffee"]
    code, out, _ = run(capsys, "search", "coffee")
    assert "score" in out and "Prefers dark roast coffee" in out

    code, out, _ = run(capsys, "get", found[0]["id"])
    assert code == 0 and "metadata" in out and '{"topic": "food"}' in out


def test_update_delete_restore_history_are_the_persons(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mid = add(capsys, "Likes tea")
    code, out, _ = run(capsys, "update", mid, "--text", "Likes green tea", "--json")
    assert code == 0 and json.loads(out)["memory"] == "Likes green tea"
    assert run(capsys, "delete", mid)[0] == 0
    code, out, err = run(capsys, "get", mid)
    assert code == 1 and out == "" and err.count("\n") == 1 and mid in err
    code, out, _ = run(capsys, "restore", mid, "--json")
    assert code == 0 and json.loads(out)["memory"]["memory"] == "Likes green tea"

    code, out, _ = run(capsys, "history", mid, "--json")
    events = json.loads(out)
    assert [e["event"] for e in events] == ["ADD", "UPDATE", "DELETE", "RESTORE"]
    assert {e["source"] for e in events} == {"person"}
    code, out, _ = run(capsys, "history", mid)
    assert "Likes tea" in out and "Likes green tea" in out and "UPDATE" in out


def test_engine_errors_are_one_line_with_status_1(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mid = add(capsys, "Something")
    code, out, err = run(capsys, "update", mid)
    assert code == 1 and out == "" and err.startswith("mem0-mcp update: ") and "text" in err
    assert "Traceback" not in err and err.count("\n") == 1
    code, _, err = run(capsys, "search", "x", "--filters", '{"topic": {"$nope": 1}}')
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    code, _, err = run(capsys, "restore", "no-such-id")
    assert code == 1 and "no-such-id" in err


def test_usage_errors_are_status_2(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["search", "--limit", "zero", "q"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        cli.main(["add", "--metadata", "[1]", "x"])
    assert exit_.value.code == 2 and "JSON object" in capsys.readouterr().err
    assert cli.main(["delete"]) == 2
    assert cli.main(["delete", "--all"]) == 2 and "--yes" in capsys.readouterr().err


def test_delete_all_and_stats(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add(capsys, "One")
    add(capsys, "Two")
    code, out, _ = run(capsys, "delete", "--all", "--yes")
    assert code == 0 and "deleted 2 memories of user_id='alice'" in out
    code, out, _ = run(capsys, "stats", "--json")
    assert code == 0 and json.loads(out)["memories"] == 0
    code, out, _ = run(capsys, "stats")
    assert "embedder" in out and "fake-bow" in out


def test_help_lists_the_people_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("add", "search", "list", "history", "export", "import"):
        assert command in out
