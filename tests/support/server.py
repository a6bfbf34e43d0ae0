"""Helpers for the server tests: a server on the fake embedder, a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from mem0_mcp.config import Settings
from mem0_mcp.engine.memory import Memory
from mem0_mcp.server.app import create_server
from mem0_mcp.server.http_app import build_http_app
from mem0_mcp.server.state import MemoryServer
from tests.support.engine import FakeEmbedder, make_settings

REPO = Path(__file__).resolve().parents[2]
MEM0_MCP_BIN = Path(sys.executable).with_name("mem0-mcp")

MODEL_CACHE = REPO / ".pytest_cache" / "mem0-mcp-models"

TOKEN_ALICE = "alice-token-0123456789abcdef"
# A plain initialize request, for tests that speak HTTP without an MCP client.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
TOKEN_BOB = "bob-token-0123456789abcdef"


def fake_server(settings: Settings) -> MemoryServer:
    return create_server(settings, memory_factory=lambda s: Memory(s, embedder=FakeEmbedder()))


def http_settings(data_dir: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "transport": "http",
        "auth_tokens": {TOKEN_ALICE: "alice", TOKEN_BOB: "bob"},
        "max_request_bytes": 64 * 1024,
    }
    base.update(overrides)
    return make_settings(data_dir, **base)


def structured(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)


@asynccontextmanager
async def running_http(server: MemoryServer, transport: str) -> AsyncIterator[str]:
    """Serve the real Starlette app with uvicorn on an ephemeral 127.0.0.1 port; yield the base URL."""
    async with running_app(build_http_app(server, transport=transport)) as base:
        yield base


@asynccontextmanager
async def running_app(app: Any, *, lifespan: str = "on") -> AsyncIterator[str]:
    """Serve any ASGI app with uvicorn on an ephemeral 127.0.0.1 port; yield the base URL."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan=lifespan, timeout_graceful_shutdown=2
    )
    userver = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(userver._serve)  # _serve: no signal handlers inside the test runner
        with anyio.fail_after(20):
            while not userver.started:
                await anyio.sleep(0.02)
        port = userver.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            userver.should_exit = True


def example_config_env(data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Command and environment from claude_desktop_config.example.json, as Claude Desktop uses them."""
    config = json.loads((REPO / "claude_desktop_config.example.json").read_text())
    entry = config["mcpServers"]["mem0"]
    command = entry["command"]
    if not os.path.isabs(command):
        command = str(MEM0_MCP_BIN) if command == "mem0-mcp" else command
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env.update(entry.get("env", {}))
    env["MEM0_MCP_DATA_DIR"] = str(data_dir)
    return [command, *entry.get("args", [])], env


def seed_models(data_dir: Path) -> None:
    """Copy the embedder's one-time model conversion (kept by test_stdio) into a fresh data dir."""
    if MODEL_CACHE.is_dir() and not (data_dir / "models").exists():
        shutil.copytree(MODEL_CACHE, data_dir / "models")


def keep_models(data_dir: Path) -> None:
    if not MODEL_CACHE.is_dir() and (data_dir / "models").is_dir():
        shutil.copytree(data_dir / "models", MODEL_CACHE)


Connect = Callable[[str], AbstractAsyncContextManager[Client]]


def connector(base: str, transport: str) -> Connect:
    @asynccontextmanager
    async def connect(token: str) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {token}"}
        if transport == "http":
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
            ):
                yield client
        else:
            async with Client(sse_client(f"{base}/sse", headers=headers, timeout=30)) as client:
                yield client

    return connect
