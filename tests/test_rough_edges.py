"""The rough edges a new user met (issue #14, item 7): make serve's stdout, invalid settings,
`limit` bounds in the schemas, `graph export` with the graph off, a repeated delete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from pydantic.fields import FieldInfo

from mem0_mcp.config import Settings, load_settings
from mem0_mcp.errors import ConfigError
from tests.support.engine import make_settings
from tests.support.server import INITIALIZE, MODEL_CACHE, REPO, error_text, fake_server, structured

CLI = [sys.executable, "-m", "mem0_mcp.cli.main"]

# Settings that take any text: a path, a model name, a URL... no value is of the wrong kind.
ANY_TEXT = {
    "data_dir",
    "embedder_model",
    "model_cache_dir",
    "llm_model",
    "llm_base_url",
    "llm_api_key",
    "prompts_dir",
    "host",
    "auth_tokens_file",
}
# Text settings with rules of their own.
BAD_TEXT = {
    "user_id": "   ",
    "http_path": "mcp",
    "allowed_hosts": "http://example.com/x",
    "store_uri": "ftp://bucket/prefix",
    "search_threshold": "strict",
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _bad_value(name: str, field: FieldInfo) -> str | None:
    """An environment value of the wrong kind for a setting (None: it takes any text)."""
    if name in BAD_TEXT:
        return BAD_TEXT[name]
    annotation = field.annotation
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = kinds[0] if len(kinds) == 1 else annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "no-such-choice"
    if annotation is bool:
        return "maybe"
    if annotation in (int, float):
        return "not-a-number"
    if origin is dict or annotation is dict:
        return "{not json"
    return None


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_of_the_wrong_kind_gives_one_line_naming_it(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in list(os.environ):
        if key.startswith("MEM0_MCP_"):
            monkeypatch.delenv(key)
    bad = _bad_value(name, Settings.model_fields[name])
    if bad is None:
        assert name in ANY_TEXT, f"{name}: add a wrong value for it to _bad_value or list it in ANY_TEXT"
        return
    monkeypatch.setenv(f"MEM0_MCP_{name.upper()}", bad)
    with pytest.raises(ConfigError) as info:
        load_settings(data_dir=tmp_path) if name != "data_dir" else load_settings()
    message = str(info.value)
    assert "\n" not in message and f"'{name}'" in message and f"MEM0_MCP_{name.upper()}" in message


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MEM0_MCP_AUTH_TOKENS": "not json"}, "MEM0_MCP_AUTH_TOKENS"),
        ({"MEM0_MCP_AUTH_TOKENS": '{"a-secret-token-0123": 5}'}, "MEM0_MCP_AUTH_TOKENS"),
        ({"MEM0_MCP_PORT": "eighty"}, "MEM0_MCP_PORT"),
        ({"MEM0_MCP_DEFAULT_LIMIT": "500"}, "MEM0_MCP_DEFAULT_LIMIT"),
    ],
)
@pytest.mark.parametrize(
    "command", [["doctor"], ["serve"], ["warmup"], ["graph", "export", "--user-id", "u"]]
)
def test_invalid_settings_exit_2_with_one_clean_line(
    env: dict[str, str], named: str, command: list[str], tmp_path: Path
) -> None:
    proc = subprocess.run(
        [*CLI, *command],
        env=_env(MEM0_MCP_DATA_DIR=str(tmp_path), **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert "a-secret-token" not in proc.stderr  # tokens are never echoed
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("suffix", "text"), [(".json", "{bad"), (".toml", "port = "), (".json", '{"port": "x"}')]
)
def test_a_bad_config_file_gives_one_clean_line(suffix: str, text: str, tmp_path: Path) -> None:
    config = tmp_path / f"config{suffix}"
    config.write_text(text)
    proc = subprocess.run(
        [*CLI, "doctor"],
        env=_env(MEM0_MCP_DATA_DIR=str(tmp_path), MEM0_MCP_CONFIG_FILE=str(config)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "MEM0_MCP_CONFIG_FILE" in lines[0] or "'port'" in lines[0]


async def test_every_limit_has_a_maximum(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", graph_enabled=True, graph_query_enabled=True, max_limit=50)
    async with Client(fake_server(settings)) as client:
        tools = (await client.list_tools()).tools
        limits = {
            t.name: t.input_schema["properties"]["limit"]
            for t in tools
            if "limit" in t.input_schema["properties"]
        }
        assert {"search_memory", "list_memories", "search_graph", "query_graph"} <= set(limits)
        for name, schema in limits.items():
            bounds = [schema, *schema.get("anyOf", [])]
            assert any("maximum" in b for b in bounds), f"{name}: limit has no maximum: {schema}"
        search = [
            b for b in [limits["search_memory"], *limits["search_memory"].get("anyOf", [])] if "maximum" in b
        ]
        assert search[0]["maximum"] == 50 and "at most 50" in limits["search_memory"]["description"]
        refused = await client.call_tool("list_memories", {"limit": 51})
        assert refused.is_error


async def test_a_repeated_delete_answers_already_deleted(tmp_path: Path) -> None:
    async with Client(fake_server(make_settings(tmp_path / "data"))) as client:
        added = structured(await client.call_tool("add_memory", {"text": "I live in Porto"}))
        memory_id = added["results"][0]["id"]
        first = structured(await client.call_tool("delete_memory", {"memory_id": memory_id}))
        assert first["deleted"] == 1
        again = structured(await client.call_tool("delete_memory", {"memory_id": memory_id}))
        assert again["deleted"] == 0 and "already deleted" in again["message"]
        # An id never stored is still an error (another principal's: see test_http).
        assert "memory_id" in error_text(await client.call_tool("delete_memory", {"memory_id": "no-such-id"}))
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "already deleted" in (tools["delete_memory"].description or "")


def test_graph_export_with_the_graph_off_says_so(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "graph", "export", "--user-id", "u"],
        env=_env(MEM0_MCP_DATA_DIR=str(tmp_path / "data")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert "graph is off" in proc.stderr and "MEM0_MCP_GRAPH_ENABLED=true" in proc.stderr
    assert not (tmp_path / "data" / "graph.kuzu").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_serve_writes_only_json_rpc_on_stdout(tmp_path: Path) -> None:
    # A venv folder whose set-up is done (its marker newer than pyproject.toml), borrowing the bin/
    # of the running one, so make has nothing to install.
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "bin").symlink_to(Path(sys.executable).parent)
    (venv / ".installed").touch()
    env = _env(MEM0_MCP_DATA_DIR=str(tmp_path / "data"), VENV=str(venv))
    # As a client starts it: not from inside another make (`make test` runs this test, and a
    # sub-make prints "Entering directory" before it reads the Makefile, whatever it says).
    for name in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
        env.pop(name, None)
    if MODEL_CACHE.is_dir():
        env["MEM0_MCP_MODEL_CACHE_DIR"] = str(MODEL_CACHE)
    proc = subprocess.run(
        ["make", "serve"],
        cwd=REPO,
        env=env,
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.splitlines()
    assert lines, proc.stderr
    for line in lines:
        message: Any = json.loads(line)  # anything but JSON-RPC on stdout breaks the client
        assert message["jsonrpc"] == "2.0"
    assert json.loads(lines[0])["id"] == 1
    # With stdin closed at once, nothing at all.
    closed = subprocess.run(
        ["make", "serve"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert closed.stdout == "", closed.stdout
