"""``mem0-mcp install CLIENT`` (issue #14, item 5): each client's file, merged without losing
other servers, a backup kept, a malformed file left alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mem0_mcp.cli import install
from mem0_mcp.cli.main import main

OTHER = {"command": "/usr/bin/other-server", "args": ["--flag"]}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    project = tmp_path / "project"
    home.mkdir()
    project.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "platform", "linux")
    return home


@pytest.mark.parametrize(
    ("client", "args", "where", "key", "typed"),
    [
        ("claude-desktop", [], "home/.config/Claude/claude_desktop_config.json", "mcpServers", False),
        ("claude-code", [], "home/.claude.json", "mcpServers", True),
        ("claude-code", ["--scope", "project"], "project/.mcp.json", "mcpServers", True),
        ("cursor", [], "home/.cursor/mcp.json", "mcpServers", False),
        ("cursor", ["--scope", "project"], "project/.cursor/mcp.json", "mcpServers", False),
        ("vscode", [], "project/.vscode/mcp.json", "servers", True),
    ],
)
def test_each_client_gets_its_entry_merged_with_a_backup(
    home: Path,
    client: str,
    args: list[str],
    where: str,
    key: str,
    typed: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = home.parent / where
    path.parent.mkdir(parents=True, exist_ok=True)
    before = {"theme": "dark", key: {"other": OTHER}}
    path.write_text(json.dumps(before))
    assert main(["install", client, *args, "--env", "MEM0_MCP_USER_ID=me"]) == 0
    data = json.loads(path.read_text())
    assert data["theme"] == "dark" and data[key]["other"] == OTHER
    entry = data[key]["mem0"]
    assert Path(entry["command"]).is_absolute() and entry["args"][-1] == "serve"
    assert entry["env"] == {"MEM0_MCP_USER_ID": "me"}
    assert (entry.get("type") == "stdio") is typed
    [backup] = path.parent.glob(f"{path.name}.bak-*")
    assert json.loads(backup.read_text()) == before
    assert str(path) in capsys.readouterr().out


def test_a_new_file_is_created_and_a_second_install_replaces_the_entry(home: Path) -> None:
    path = home / ".cursor" / "mcp.json"
    assert main(["install", "cursor", "--name", "memory"]) == 0
    assert list(json.loads(path.read_text())["mcpServers"]) == ["memory"]
    assert not list(path.parent.glob("*.bak-*"))
    assert main(["install", "cursor", "--name", "memory", "--env", "A=1"]) == 0
    assert json.loads(path.read_text())["mcpServers"]["memory"]["env"] == {"A": "1"}
    assert len(list(path.parent.glob("*.bak-*"))) == 1


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"mcpServers": []}'])
def test_a_malformed_file_is_left_alone(home: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = home / ".config" / "Claude" / "claude_desktop_config.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert main(["install", "claude-desktop"]) == 1
    assert path.read_text() == text
    assert list(path.parent.iterdir()) == [path]
    err = capsys.readouterr().err
    assert str(path) in err and "nothing was changed" in err and "Traceback" not in err


def test_print_writes_nothing(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "custom.json"
    assert main(["install", "vscode", "--print", "--config", str(target)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["servers"]["mem0"]["type"] == "stdio"
    assert not target.exists() and not (Path.cwd() / ".vscode").exists()


def test_config_overrides_the_path(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "desktop.json"
    assert main(["install", "claude-desktop", "--config", str(target)]) == 0
    assert "mem0" in json.loads(target.read_text())["mcpServers"]


def test_macos_and_windows_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mac = install.client_file("claude-desktop", None, home=tmp_path, cwd=tmp_path, platform="darwin")
    assert mac.path == tmp_path / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    win = install.client_file("claude-desktop", None, home=tmp_path, cwd=tmp_path, platform="win32")
    assert win.path == tmp_path / "Roaming" / "Claude" / "claude_desktop_config.json"


def test_the_command_is_the_installed_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = tmp_path / "bin" / "mem0-mcp"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(script), "install", "cursor"])
    assert install.server_command() == [str(script), "serve"]
    monkeypatch.setattr(sys, "argv", ["-c"])
    monkeypatch.setenv("PATH", str(script.parent))
    script.chmod(0o755)
    assert install.server_command() == [str(script), "serve"]
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert install.server_command()[1:] == ["-m", "mem0_mcp.cli.main", "serve"]


def test_a_bad_env_pair_is_a_usage_error(home: Path) -> None:
    assert main(["install", "cursor", "--env", "novalue"]) == 2
    assert not (home / ".cursor").exists()
