"""Export / import through the real CLI entry: exact round trip, idempotence, bad lines reported
by number with the good ones imported, batch embedding, the graph, and migration in."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mem0_mcp.cli import main as cli
from mem0_mcp.cli import memories
from mem0_mcp.engine.memory import Memory
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.transfer import export, fill

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeEmbedder]:
    for key in list(os.environ):
        if key.startswith("MEM0_MCP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MEM0_MCP_LLM_PROVIDER", "none")
    monkeypatch.setenv("MEM0_MCP_USER_ID", "alice")
    monkeypatch.setenv("MEM0_MCP_GRAPH_ENABLED", "true")
    made: dict[str, FakeEmbedder] = {}

    def embedder(settings: object) -> FakeEmbedder:
        made["last"] = FakeEmbedder()
        return made["last"]

    monkeypatch.setattr(memories, "make_embedder", embedder)
    return made


def use(monkeypatch: pytest.MonkeyPatch, data: Path) -> None:
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(data))


def test_round_trip_is_exact_and_import_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict
) -> None:
    ids = fill(tmp_path / "a")
    use(monkeypatch, tmp_path / "a")
    first = export(capsys, tmp_path / "one.jsonl")
    header = json.loads(first[0])
    assert header["format"] == "mem0-mcp-export" and header["version"] == 1
    assert (header["memories"], header["deleted"], header["entities"], header["relations"]) == (6, 1, 5, 3)
    kinds = [json.loads(line)["kind"] for line in first[1:]]
    assert kinds == ["memory"] * 6 + ["deleted"] + ["entity"] * 5 + ["relation"] * 3
    by_id = {json.loads(line).get("id"): json.loads(line) for line in first[1:]}
    assert by_id[ids["old"]]["superseded_by"] == ids["new"]
    assert [e["event"] for e in by_id[ids["coffee"]]["history"]] == ["ADD", "UPDATE"]
    assert by_id[ids["talk"]]["index"]["neighbours"] == ["Bob: Where do you live?"]
    assert [e["event"] for e in by_id[ids["gone"]]["history"]] == ["ADD", "DELETE"]

    use(monkeypatch, tmp_path / "b")
    assert cli.main(["import", str(tmp_path / "one.jsonl"), "--batch-size", "2"]) == 0
    err = capsys.readouterr().err
    assert "imported 6 memories; 1 deleted memories' history; 5 entities, 3 relations" in err
    # Six memories in batches of two: three embedding calls, and one for the entity names.
    assert env["last"].calls == 4
    second = export(capsys, tmp_path / "two.jsonl")
    # Identical but for the header's export time.
    assert second[1:] == first[1:]
    assert {**json.loads(second[0]), "exported_at": ""} == {**header, "exported_at": ""}

    # Again: nothing new.
    assert cli.main(["import", str(tmp_path / "one.jsonl")]) == 0
    assert "imported 0 memories; skipped 7 already stored" in capsys.readouterr().err
    assert export(capsys, tmp_path / "three.jsonl")[1:] == first[1:]

    # The imported store behaves as the original: same vectors, restore of a deleted memory.
    a = Memory(make_settings(tmp_path / "a"), embedder=FakeEmbedder())
    b = Memory(make_settings(tmp_path / "b"), embedder=FakeEmbedder())
    for mem_id in (ids["coffee"], ids["talk"]):
        va = a.storage.vectors.query(f"id = '{mem_id}'", columns=("vector",))[0]["vector"]
        vb = b.storage.vectors.query(f"id = '{mem_id}'", columns=("vector",))[0]["vector"]
        assert np.allclose(va, vb)
    assert b.restore(ids["gone"]).memory is not None
    a.close()
    b.close()


def test_bad_lines_are_reported_and_the_good_ones_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict
) -> None:
    fill(tmp_path / "a")
    use(monkeypatch, tmp_path / "a")
    lines = export(capsys, tmp_path / "one.jsonl")
    broken = list(lines[:7])
    broken[2] = "{not json"
    bad_scope = json.loads(lines[3])
    bad_scope["scope"] = {"user_id": None}
    broken[3] = json.dumps(bad_scope)
    no_text = json.loads(lines[4])
    del no_text["text"]
    broken[4] = json.dumps(no_text)
    broken.append(json.dumps({"kind": "nonsense"}))
    (tmp_path / "broken.jsonl").write_text("\n".join(broken) + "\n")
    use(monkeypatch, tmp_path / "b")
    assert cli.main(["import", str(tmp_path / "broken.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "line 3: not JSON" in err
    assert "line 4: scope: give at least one of user_id, agent_id, run_id" in err
    assert "line 5: text: Field required" in err
    assert "line 8: kind: 'nonsense'" in err
    assert "imported 3 memories" in err and "4 bad lines" in err and "Traceback" not in err

    (tmp_path / "nothing.jsonl").write_text('{"kind": "memory"}\n')
    assert cli.main(["import", str(tmp_path / "nothing.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "line 1 is not a mem0-mcp-export header" in err and err.count("\n") == 1


def test_export_of_one_scope_and_graph_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict
) -> None:
    fill(tmp_path / "a")
    use(monkeypatch, tmp_path / "a")
    lines = export(capsys, tmp_path / "bob.jsonl", "--user-id", "bob")
    assert json.loads(lines[0])["memories"] == 1 and json.loads(lines[0])["deleted"] == 1
    assert all(json.loads(line)["kind"] != "memory" or "bob" in line for line in lines[1:])
    monkeypatch.setenv("MEM0_MCP_GRAPH_ENABLED", "false")
    use(monkeypatch, tmp_path / "b")
    assert cli.main(["import", str(tmp_path / "bob.jsonl")]) == 0
    assert "left out 3 graph lines (the graph is off" in capsys.readouterr().err


def test_import_from_the_memory_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict
) -> None:
    use(monkeypatch, tmp_path / "data")
    lines = [
        {
            "type": "entity",
            "name": "John",
            "entityType": "person",
            "observations": ["Speaks Spanish", "Likes tea"],
        },
        {"type": "entity", "name": "Acme", "entityType": "organization", "observations": []},
        {"type": "relation", "from": "John", "to": "Acme", "relationType": "works_at"},
        {"type": "mystery"},
    ]
    path = tmp_path / "memory.json"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert cli.main(["import", "--from", "memory-server", "--user-id", "john", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        "line 4: type: 'mystery'" in err and "imported 2 memories" in err and "0 entities, 1 relations" in err
    )
    code = cli.main(["list", "--user-id", "john", "--json"])
    page = json.loads(capsys.readouterr().out)
    assert code == 0 and sorted(r["memory"] for r in page["results"]) == [
        "John: Likes tea",
        "John: Speaks Spanish",
    ]
    assert page["results"][0]["metadata"]["entity"] == "John"
    # The older single-JSON form, again: already there.
    path.write_text(json.dumps({"entities": lines[:2], "relations": lines[2:3]}))
    assert cli.main(["import", "--from", "memory-server", "--user-id", "john", str(path)]) == 0
    assert "imported 0 memories; skipped 2 already stored" in capsys.readouterr().err


def test_import_a_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict
) -> None:
    use(monkeypatch, tmp_path / "data")
    chat = [
        {"role": "user", "content": "I moved to Porto"},
        {"role": "assistant", "content": "Nice, how is it?"},
        {"role": "narrator", "content": "bad role"},
    ]
    (tmp_path / "chat.json").write_text(json.dumps(chat))
    assert cli.main(["import", "--from", "chat", "--agent-id", "bot", str(tmp_path / "chat.json")]) == 1
    err = capsys.readouterr().err
    assert "line 3: message 3: role" in err and "imported 2 memories" in err
    assert cli.main(["list", "--agent-id", "bot", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 2


@pytest.mark.slow
def test_export_import_in_subprocesses(tmp_path: Path) -> None:
    """The installed entry point, end to end, with the fake embedder plugged in by a small shim."""
    fill(tmp_path / "a")
    shim = (
        "import sys\n"
        "from mem0_mcp.cli import main, memories\n"
        "from tests.support.engine import FakeEmbedder\n"
        "memories.make_embedder = lambda settings: FakeEmbedder()\n"
        "sys.exit(main.main(sys.argv[1:]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env.update(PYTHONPATH=str(ROOT), MEM0_MCP_LLM_PROVIDER="none", MEM0_MCP_GRAPH_ENABLED="true")

    def run(data: Path, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", shim, *argv],
            env={**env, "MEM0_MCP_DATA_DIR": str(data)},
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )

    one = run(tmp_path / "a", "export")
    assert one.returncode == 0, one.stderr
    (tmp_path / "one.jsonl").write_text(one.stdout)
    imported = run(tmp_path / "b", "import", str(tmp_path / "one.jsonl"))
    assert imported.returncode == 0 and "imported 6 memories" in imported.stderr
    two = run(tmp_path / "b", "export")
    assert two.stdout.splitlines()[1:] == one.stdout.splitlines()[1:]
    bad = run(tmp_path / "b", "import", str(tmp_path / "missing.jsonl"))
    assert bad.returncode == 1 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """What reindex (``lines=True``), import and export show while they work."""
    from mem0_mcp.cli import output

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with output.progress_bar("reindex", lines=True) as update:
        for done in range(0, 41, 4):
            update(done, 40, "memories")
    expected = [f"reindex: {d}/40 memories ({d * 100 // 40}%)" for d in range(0, 41, 4)]
    assert log.getvalue().splitlines() == expected
    with output.progress_bar("import") as update:
        update(1, 2, "imported")
    assert log.getvalue().count("\n") == 11  # without lines=True, nothing

    tty = _Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    with output.progress_bar("reindex", lines=True) as update:
        update(30, 40, "memories")
    drawn = tty.getvalue()
    assert "reindex: memories" in drawn and "30/40" in drawn and "━" in drawn
    assert "(75%)" not in drawn  # the bar, not the log lines
