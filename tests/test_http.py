"""Streamable HTTP and SSE on a real 127.0.0.1 port: tokens, principals, isolation, HTTP guards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import ValidationError

from mem0_mcp.config import Settings
from mem0_mcp.errors import ConfigError
from mem0_mcp.server.app import create_server
from mem0_mcp.server.http_app import transport_security
from tests.support.engine import make_settings
from tests.support.server import (
    INITIALIZE,
    TOKEN_ALICE,
    TOKEN_BOB,
    Connect,
    connector,
    error_text,
    fake_server,
    http_settings,
    running_http,
    structured,
)

pytestmark = pytest.mark.anyio


async def _isolation(connect: Connect) -> None:
    async with connect(TOKEN_ALICE) as alice, connect(TOKEN_BOB) as bob:
        [a] = structured(await alice.call_tool("add_memory", {"text": "alice keeps a secret garden"}))[
            "results"
        ]
        [b] = structured(await bob.call_tool("add_memory", {"text": "bob keeps a secret garden"}))["results"]
        for me, mine, other_name, theirs, client in (
            ("alice", a, "bob", b, alice),
            ("bob", b, "alice", a, bob),
        ):
            hits = structured(await client.call_tool("search_memory", {"query": "secret garden"}))["results"]
            assert [h["id"] for h in hits] == [mine["id"]] and hits[0]["user_id"] == me
            listed = structured(await client.call_tool("list_memories", {}))
            assert [m["id"] for m in listed["results"]] == [mine["id"]]
            # Naming the other principal is refused, whatever the tool.
            for tool, args in (
                ("search_memory", {"query": "garden", "user_id": other_name}),
                ("list_memories", {"user_id": other_name}),
                ("add_memory", {"text": "planted", "user_id": other_name}),
                ("delete_all_memories", {"user_id": other_name}),
            ):
                assert "user_id" in error_text(await client.call_tool(tool, args)), tool
            # Ids of the other principal's memories behave as if they did not exist.
            for tool, args in (
                ("get_memory", {"memory_id": theirs["id"]}),
                ("update_memory", {"memory_id": theirs["id"], "text": "hijacked"}),
                ("delete_memory", {"memory_id": theirs["id"]}),
                ("memory_history", {"memory_id": theirs["id"]}),
            ):
                assert "memory_id" in error_text(await client.call_tool(tool, args)), tool
            # Another scope id does not widen the scope beyond the principal.
            by_agent = structured(await client.call_tool("delete_all_memories", {"agent_id": "nobody"}))
            assert by_agent["deleted"] == 0
            recent = await client.read_resource(f"memory://{me}/recent")
            assert json.loads(recent.contents[0].text)["total"] == 1
            with pytest.raises(Exception, match="token"):
                await client.read_resource(f"memory://{other_name}/recent")
            stats = json.loads((await client.read_resource("memory://stats")).contents[0].text)
            assert stats["memories"] == 1 and "data_dir" not in stats
        # Nothing either one tried changed the other's memory.
        assert structured(await alice.call_tool("get_memory", {"memory_id": a["id"]}))["memory"] == (
            "alice keeps a secret garden"
        )
        assert structured(await bob.call_tool("get_memory", {"memory_id": b["id"]}))["memory"] == (
            "bob keeps a secret garden"
        )


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_two_principals_are_isolated(tmp_path: Path, transport: str) -> None:
    server = fake_server(http_settings(tmp_path / "data", transport=transport))
    async with running_http(server, transport) as base:
        await _isolation(connector(base, transport))


async def test_http_guards(tmp_path: Path) -> None:
    server = fake_server(http_settings(tmp_path / "data"))
    init = INITIALIZE
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with running_http(server, "http") as base, httpx2.AsyncClient(timeout=30) as http:
        health = await http.get(f"{base}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"

        no_token = await http.post(f"{base}/mcp", json=init, headers=accept)
        assert no_token.status_code == 401 and "www-authenticate" in no_token.headers
        wrong = await http.post(f"{base}/mcp", json=init, headers={**accept, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401

        auth = {**accept, "Authorization": f"Bearer {TOKEN_ALICE}"}
        ok = await http.post(f"{base}/mcp", json=init, headers=auth)
        assert ok.status_code == 200

        rebinding = await http.post(f"{base}/mcp", json=init, headers={**auth, "Host": "evil.example:80"})
        assert rebinding.status_code in (400, 403, 421)
        bad_origin = await http.post(
            f"{base}/mcp", json=init, headers={**auth, "Origin": "http://evil.example"}
        )
        assert bad_origin.status_code in (400, 403)

        oversize = {**init, "params": {**init["params"], "pad": "x" * (70 * 1024)}}
        too_big = await http.post(f"{base}/mcp", json=oversize, headers=auth)
        assert too_big.status_code == 413

        malformed = await http.post(f"{base}/mcp", content=b"{not json", headers=auth)
        assert malformed.status_code == 400

        # After all that, a real client still gets served.
        async with Client(
            streamable_http_client(
                f"{base}/mcp",
                http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN_BOB}"}, timeout=30),
            )
        ) as client:
            assert structured(await client.call_tool("add_memory", {"text": "still serving"}))["results"]


async def test_allowed_hosts_setting(tmp_path: Path) -> None:
    server = fake_server(http_settings(tmp_path / "data", allowed_hosts=["memory.example.com"]))
    init = INITIALIZE
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {TOKEN_ALICE}",
    }
    async with running_http(server, "http") as base, httpx2.AsyncClient(timeout=30) as http:
        for host in ("memory.example.com", "memory.example.com:443"):
            allowed = await http.post(f"{base}/mcp", json=init, headers={**headers, "Host": host})
            assert allowed.status_code == 200, (host, allowed.text)
        proxied = await http.post(
            f"{base}/mcp",
            json=init,
            headers={**headers, "Host": "memory.example.com", "Origin": "https://memory.example.com"},
        )
        assert proxied.status_code == 200
        for host in ("evil.example", "memory.example.com.evil.example"):
            refused = await http.post(f"{base}/mcp", json=init, headers={**headers, "Host": host})
            assert refused.status_code in (400, 403, 421), host


def test_allowed_hosts_from_the_environment_and_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEM0_MCP_ALLOWED_HOSTS", "memory.example.com, proxy.internal:8443,[::1]:9000")
    settings = make_settings(tmp_path / "data")
    assert settings.allowed_hosts == ["memory.example.com", "proxy.internal:8443", "[::1]:9000"]
    monkeypatch.setenv("MEM0_MCP_ALLOWED_HOSTS", '["a.example", "b.example:80"]')
    settings = make_settings(tmp_path / "data")
    assert settings.allowed_hosts == ["a.example", "b.example:80"]
    # serve --allowed-host adds to the setting; both reach the DNS-rebinding check.
    security = transport_security(settings, ["cli.example"])
    assert security.allowed_hosts is not None
    for host in ("a.example", "a.example:*", "b.example:80", "cli.example", "127.0.0.1:*"):
        assert host in security.allowed_hosts
    for bad in ("http://a.example", "a.example/path", "::1", "a b"):
        monkeypatch.setenv("MEM0_MCP_ALLOWED_HOSTS", bad)
        with pytest.raises(ValidationError, match="allowed_hosts"):
            make_settings(tmp_path / "data")


async def test_unauthenticated_loopback_uses_the_default_user(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", transport="http", allow_unauthenticated_loopback=True, user_id="local"
    )
    async with running_http(fake_server(settings), "http") as base, Client(f"{base}/mcp") as client:
        hits = structured(await client.call_tool("add_memory", {"text": "no token needed here"}))
        assert hits["results"][0]["event"] == "ADD"
        listed = structured(await client.call_tool("list_memories", {}))
        assert listed["results"][0]["user_id"] == "local"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, "auth_tokens"),
        ({"allow_unauthenticated_loopback": True, "host": "0.0.0.0"}, "loopback"),
        (
            {"allow_unauthenticated_loopback": True, "host": "0.0.0.0", "auth_tokens": {TOKEN_ALICE: "a"}},
            "loopback",
        ),
        ({"auth_tokens": {"short": "alice"}}, "16 characters"),
    ],
)
def test_unsafe_http_configurations_are_refused(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    settings: Settings = make_settings(tmp_path / "data", transport="http", **overrides)
    with pytest.raises(ConfigError, match=message):
        create_server(settings)


def test_tokens_file(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({TOKEN_BOB: "bob"}))
    settings = make_settings(tmp_path / "data", transport="sse", auth_tokens_file=tokens)
    assert create_server(settings).settings.auth is not None
