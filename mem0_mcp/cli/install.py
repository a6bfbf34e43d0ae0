"""``mem0-mcp install CLIENT``: add this server to an MCP client's configuration file.

Each client keeps its servers in a JSON file under a key of its own (``mcpServers``, or
``servers`` for VS Code). The entry names the installed command by its absolute path, because
clients start servers without the user's shell PATH. The file is merged, never replaced: other
servers and settings stay, the previous file is kept as ``FILE.bak-<time>``, and a file that is
not a JSON object is left alone with an error. ``--print`` prints the entry and writes nothing.

Exit status: 0 written or printed, 1 the file could not be read or written, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")


class InstallError(Exception):
    """The client's configuration file cannot be merged (unreadable, not a JSON object...)."""


@dataclass(frozen=True)
class ClientFile:
    """Where a client keeps its servers: the file, the key holding them, and the entry's type."""

    path: Path
    key: str
    stdio_type: bool  # whether entries carry "type": "stdio"
    restart_hint: str


def add_install_parser(commands: argparse._SubParsersAction) -> None:
    install = commands.add_parser(
        "install",
        help="add this server to an MCP client's config (claude-desktop, claude-code, cursor, vscode)",
        description="Write this server's entry (the absolute path of mem0-mcp, args ['serve']) into "
        "the client's MCP configuration file, keeping every other server; the previous file is kept "
        "as FILE.bak-<time>. Files: claude-desktop: claude_desktop_config.json in the Claude "
        "folder; claude-code: ~/.claude.json (--scope user) or ./.mcp.json (--scope project); "
        "cursor: ~/.cursor/mcp.json (user) or ./.cursor/mcp.json (project); vscode: "
        "./.vscode/mcp.json.",
    )
    install.add_argument("client", choices=CLIENTS, help="the MCP client to configure")
    install.add_argument("--print", action="store_true", help="print the entry; write nothing")
    install.add_argument(
        "--config", type=Path, metavar="PATH", help="the client's config file (default: its usual place)"
    )
    install.add_argument("--name", default="mem0", help="the server's name in the client (default mem0)")
    install.add_argument(
        "--scope",
        choices=["user", "project"],
        default=None,
        help="claude-code and cursor: every project (user, default) or this folder (project); "
        "vscode: project only",
    )
    install.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the server, e.g. MEM0_MCP_USER_ID=me (repeatable)",
    )


def client_file(client: str, scope: str | None, *, home: Path, cwd: Path, platform: str) -> ClientFile:
    """The usual configuration file of ``client`` on ``platform`` (``sys.platform`` values)."""
    if client == "claude-desktop":
        if platform == "darwin":
            folder = home / "Library" / "Application Support" / "Claude"
        elif platform == "win32":
            folder = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "Claude"
        else:
            folder = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "Claude"
        return ClientFile(
            folder / "claude_desktop_config.json", "mcpServers", False, "restart Claude Desktop"
        )
    if client == "claude-code":
        path = cwd / ".mcp.json" if scope == "project" else home / ".claude.json"
        return ClientFile(path, "mcpServers", True, "run /mcp in Claude Code to check it")
    if client == "cursor":
        path = (cwd if scope == "project" else home) / ".cursor" / "mcp.json"
        return ClientFile(path, "mcpServers", False, "reload Cursor's MCP settings")
    if client == "vscode":
        if scope == "user":
            raise InstallError(
                "vscode: only the workspace file (.vscode/mcp.json) is written; for the user profile "
                "run 'MCP: Open User Configuration' in VS Code and paste the output of --print"
            )
        return ClientFile(cwd / ".vscode" / "mcp.json", "servers", True, "start it from VS Code's MCP view")
    raise InstallError(f"unknown client {client!r}; choose from {', '.join(CLIENTS)}")


def server_command() -> list[str]:
    """The absolute command line that starts this server: the installed ``mem0-mcp`` script when
    there is one (the running one first), else this interpreter with ``-m``."""
    running = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if running is not None and running.name.startswith("mem0-mcp") and running.is_file():
        return [str(running.absolute()), "serve"]
    found = shutil.which("mem0-mcp")
    if found:
        return [str(Path(found).absolute()), "serve"]
    return [str(Path(sys.executable).absolute()), "-m", "mem0_mcp.cli.main", "serve"]


def server_entry(target: ClientFile, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The JSON value of this server in the client's file."""
    entry: dict[str, Any] = {"type": "stdio"} if target.stdio_type else {}
    entry.update(command=command[0], args=command[1:])
    if env:
        entry["env"] = env
    return entry


def read_config(path: Path, key: str) -> dict[str, Any]:
    """The client's file as a dict ({} when absent). Raises InstallError when it is not a JSON
    object or its ``key`` is not an object: nothing is written then."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc}") from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InstallError(
            f"{path} is not valid JSON ({exc}); fix or move it, then run install again (nothing was changed)"
        ) from exc
    if not isinstance(data, dict):
        raise InstallError(f"{path} holds {type(data).__name__}, not a JSON object; nothing was changed")
    if not isinstance(data.get(key, {}), dict):
        raise InstallError(f"{path}: {key!r} is not a JSON object; nothing was changed")
    return data


def write_config(path: Path, data: dict[str, Any]) -> Path | None:
    """Write ``data`` to ``path`` atomically, keeping the previous file as ``path.bak-<time>``;
    returns the backup (None when there was no file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.bak-{stamp}")
        n = 1
        while backup.exists():  # two installs within a second keep both backups
            n += 1
            backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        shutil.copy2(path, backup)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        if backup is not None:
            shutil.copymode(backup, tmp)  # ~/.claude.json may be private (0600): keep it so
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InstallError(f"--env {pair!r}: expected KEY=VALUE, e.g. MEM0_MCP_USER_ID=me")
        env[key] = value
    return env


def run_install(args: argparse.Namespace) -> int:
    """``mem0-mcp install``: 0 written or printed, 1 the file cannot be merged, 2 usage."""
    try:
        env = _parse_env(args.env)
        target = client_file(args.client, args.scope, home=Path.home(), cwd=Path.cwd(), platform=sys.platform)
    except InstallError as exc:
        print(f"mem0-mcp install: {exc}", file=sys.stderr)
        return 2
    if args.config is not None:
        target = ClientFile(args.config.expanduser(), target.key, target.stdio_type, target.restart_hint)
    entry = server_entry(target, server_command(), env)
    if args.print:
        print(json.dumps({target.key: {args.name: entry}}, indent=2))
        print(f"(add it under {target.key!r} in {target.path})", file=sys.stderr)
        return 0
    try:
        data = read_config(target.path, target.key)
        servers = data.setdefault(target.key, {})
        replaced = args.name in servers
        servers[args.name] = entry
        backup = write_config(target.path, data)
    except (InstallError, OSError) as exc:
        print(f"mem0-mcp install: {exc}", file=sys.stderr)
        return 1
    what = "replaced" if replaced else "added"
    kept = f"; previous file kept as {backup}" if backup else ""
    print(f"{what} server {args.name!r} ({entry['command']}) in {target.path}{kept}; {target.restart_hint}")
    return 0
