"""Several HTTP servers behind one balancer with no session affinity (http_stateless): a round-robin
proxy sends each request to the next server; real uvicorn servers on 127.0.0.1 sharing one data dir."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mem0_mcp.errors import ConfigError
from mem0_mcp.server.http_app import build_http_app
from tests.support.server import (
    TOKEN_ALICE,
    fake_server,
    http_settings,
    running_app,
    running_http,
    structured,
)

pytestmark = pytest.mark.anyio

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


def round_robin(backends: list[str], seen: list[str], http: httpx2.AsyncClient | None = None) -> Starlette:
    """A balancer with no affinity: request n goes to backend n mod len (``seen`` records which).
    ``http``: one client for every forwarded request (under load, a client per request costs the
    balancer more CPU than the nodes spend); None: a client per request."""
    turn = itertools.count()

    async def forward(request: Request) -> Response:
        base = backends[next(turn) % len(backends)]
        seen.append(base)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS]
        url, body = base + request.url.path, await request.body()
        if http is not None:
            reply = await http.request(request.method, url, headers=headers, content=body)
        else:
            async with httpx2.AsyncClient(timeout=30) as own:
                reply = await own.request(request.method, url, headers=headers, content=body)
        keep = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_HEADERS | {"content-encoding"}}
        return Response(reply.content, status_code=reply.status_code, headers=keep)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])


@asynccontextmanager
async def client_via(base: str, mode: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {TOKEN_ALICE}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        transport = streamable_http_client(f"{base}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:  # type: ignore[arg-type]
            yield client


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_two_stateless_servers_behind_a_round_robin_balancer(tmp_path: Path, mode: str) -> None:
    """Clients of the 2025 protocol (``legacy``: an initialize handshake, then a session) and of the
    current one; each request may land on either server."""
    data_dir = tmp_path / "data"
    one = fake_server(http_settings(data_dir, http_stateless=True))
    two = fake_server(http_settings(data_dir, http_stateless=True))
    seen: list[str] = []
    async with (
        running_http(one, "http") as a,
        running_http(two, "http") as b,
        running_app(round_robin([a, b], seen), lifespan="off") as balancer,
        client_via(balancer, mode) as client,
    ):
        added = []
        for i in range(6):
            r = structured(await client.call_tool("add_memory", {"text": f"Visited city number {i} in May"}))
            added.append(r["results"][0]["id"])
        for _ in range(4):  # every node sees every add, whichever took it
            found = structured(await client.call_tool("list_memories", {"limit": 50}))
            assert {m["id"] for m in found["results"]} >= set(added)
        got = structured(await client.call_tool("get_memory", {"memory_id": added[0]}))
        assert got["memory"] == "Visited city number 0 in May"
        async with httpx2.AsyncClient(timeout=30) as http:
            health = (await http.get(f"{a}/health")).json()
        assert health["stateless"] is True and health["store"] == str(data_dir)
    assert {a, b} <= set(seen)  # both nodes answered


async def test_without_stateless_a_balancer_needs_affinity(tmp_path: Path) -> None:
    """Why the setting exists: a 2025-protocol client holds a session, which lives in one server,
    so the second node refuses the session the first one opened."""
    data_dir = tmp_path / "data"
    seen: list[str] = []
    async with (
        running_http(fake_server(http_settings(data_dir)), "http") as a,
        running_http(fake_server(http_settings(data_dir)), "http") as b,
        running_app(round_robin([a, b], seen), lifespan="off") as balancer,
    ):
        with pytest.raises(Exception):  # noqa: B017 (the SDK's error type is its own)
            async with client_via(balancer, "legacy") as client:
                await client.call_tool("list_memories", {})
                await client.call_tool("list_memories", {})


def test_stateless_refuses_sse_and_sampling(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="http_stateless: SSE"):
        build_http_app(fake_server(http_settings(tmp_path / "d", http_stateless=True)), transport="sse")
    settings = http_settings(tmp_path / "d", http_stateless=True, llm_provider="sampling")
    with pytest.raises(ConfigError, match="MCP sampling"):
        build_http_app(fake_server(settings), transport="http")
