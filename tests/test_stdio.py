"""stdio as Claude Desktop and IDE agents use it: real subprocesses, and the front in-process."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from mem0_mcp.engine.memory import Memory
from mem0_mcp.server import stdio_front, wire_guard
from mem0_mcp.server.app import create_server
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.server import INITIALIZE, example_config_env, keep_models, seed_models, structured

pytestmark = pytest.mark.anyio

# The initialize request as Claude Desktop sends it.
INIT = {
    **INITIALIZE,
    "params": {**INITIALIZE["params"], "clientInfo": {"name": "claude-ai", "version": "0.1.0"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def call(msg_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


class LineChannel:
    """JSON lines over a pair of byte streams, with bounded waits."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self._writer = writer
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self.raw: list[bytes] = []
        self.responses: dict[Any, dict[str, Any]] = {}

        def pump() -> None:
            for line in iter(reader.readline, b""):
                self.raw.append(line)
                self._lines.put(line)
            self._lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def send(self, msg: dict[str, Any]) -> None:
        self._writer.write(json.dumps(msg).encode() + b"\n")
        self._writer.flush()

    def recv(self, timeout: float) -> dict[str, Any]:
        line = self._lines.get(timeout=timeout)
        assert line is not None, "the server closed stdout"
        return json.loads(line)

    def recv_id(self, msg_id: Any, timeout: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The response to msg_id, and what else arrived meanwhile (responses may come out of order)."""
        deadline = time.monotonic() + timeout
        others = []
        while msg_id not in self.responses:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if "id" in msg and "method" not in msg:
                self.responses[msg["id"]] = msg
            if msg.get("id") != msg_id:
                others.append(msg)
        return self.responses.pop(msg_id), others


@pytest.fixture(scope="module")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh data dir for the real-model tests, seeded with the embedder's one-time model export.

    The bundled model is converted once per data dir (tens of seconds); a user pays that on the
    first start only, so the tests keep the converted model between runs.
    """
    data_dir = tmp_path_factory.mktemp("stdio") / "data"
    seed_models(data_dir)
    yield data_dir
    keep_models(data_dir)


def _log_time(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


@pytest.mark.slow
def test_claude_desktop_config_handshake_before_model_add_search(
    shared_data_dir: Path, tmp_path: Path
) -> None:
    command, env = example_config_env(shared_data_dir)
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        started = time.time()
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
        )
        try:
            chan = LineChannel(proc.stdout, proc.stdin)
            chan.send(INIT)
            init, _ = chan.recv_id(1, timeout=30)
            initialized_at = time.time()
            assert init["result"]["serverInfo"]["name"] == "mem0-mcp"
            assert init["result"]["protocolVersion"] == "2025-06-18"
            chan.send(INITIALIZED)
            chan.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            tools, _ = chan.recv_id(2, timeout=30)
            listed_at = time.time()
            assert len(tools["result"]["tools"]) >= 8

            chan.send(call(3, "add_memory", {"text": "I love hiking in the mountains"}))
            chan.send(call(4, "add_memory", {"text": "My tax return is due in April"}))
            for msg_id in (3, 4):
                added, _ = chan.recv_id(msg_id, timeout=180)
                assert not added["result"].get("isError"), added
            chan.send(call(5, "search_memory", {"query": "outdoor activities"}))
            found, _ = chan.recv_id(5, timeout=60)
            hits = found["result"]["structuredContent"]["results"]
            assert hits[0]["memory"] == "I love hiking in the mountains"
            assert hits[0]["user_id"] == env["MEM0_MCP_USER_ID"]
            # Claude Desktop stops its servers with SIGTERM: a clean exit, not a kill.
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    log = stderr_path.read_text(errors="replace").splitlines()
    loaded = [line for line in log if "embedding model" in line and "loaded in" in line]
    assert loaded, "\n".join(log[-30:])
    model_loaded_at = _log_time(loaded[0])
    print(
        f"initialize answered {initialized_at - started:.3f}s after spawn, tools/list "
        f"{listed_at - started:.3f}s, model loaded {model_loaded_at - started:.1f}s"
    )
    # The handshake never waits for the model: order, not a wall-clock bound.
    assert initialized_at < model_loaded_at and listed_at < model_loaded_at
    # stdout carried JSON-RPC and nothing else.
    assert chan.raw
    for line in chan.raw:
        assert json.loads(line)["jsonrpc"] == "2.0", line


@pytest.mark.slow
async def test_two_stdio_servers_share_one_data_dir(shared_data_dir: Path, tmp_path: Path) -> None:
    """Claude Desktop (legacy handshake) and an IDE agent (2026 discover) each spawn a server."""
    command, env = example_config_env(shared_data_dir)
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    with (tmp_path / "a.log").open("w") as log_a, (tmp_path / "b.log").open("w") as log_b:
        with anyio.fail_after(240):
            async with (
                Client(stdio_client(params, errlog=log_a), mode="legacy") as desktop,
                Client(stdio_client(params, errlog=log_b)) as ide,
            ):
                await desktop.call_tool(
                    "add_memory", {"text": "Desktop saw the user prefers tea", "run_id": "s"}
                )
                await ide.call_tool(
                    "add_memory", {"text": "IDE saw the user prefers dark mode", "run_id": "s"}
                )
                for client in (desktop, ide):
                    listed = structured(await client.call_tool("list_memories", {"run_id": "s"}))
                    assert {m["memory"] for m in listed["results"]} >= {
                        "Desktop saw the user prefers tea",
                        "IDE saw the user prefers dark mode",
                    }


# ---------------------------------------------------------------- the front, in-process


class Pipes:
    def __init__(self) -> None:
        c2s_r, c2s_w = os.pipe()
        s2c_r, s2c_w = os.pipe()
        self.server_in = os.fdopen(c2s_r, "rb")
        self.client_out = os.fdopen(c2s_w, "wb")
        self.client_in = os.fdopen(s2c_r, "rb")
        self.server_out = os.fdopen(s2c_w, "wb")

    def close(self) -> None:
        # Write ends first: a buffered reader blocked in readline holds its lock until it sees EOF.
        for f in (self.client_out, self.server_out, self.server_in, self.client_in):
            with contextlib.suppress(OSError):
                f.close()


@pytest.fixture
def pipes() -> Iterator[Pipes]:
    p = Pipes()
    yield p
    p.close()


async def _serve_in_thread(front: stdio_front.StdioFront, settings: Any) -> threading.Thread:
    def run() -> None:
        server = create_server(settings, memory_factory=lambda s: Memory(s, embedder=FakeEmbedder()))
        anyio.run(stdio_front.serve, server, front)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def test_front_answers_before_the_server_exists_then_hands_over(pipes: Pipes, tmp_path: Path) -> None:
    front = stdio_front.StdioFront(pipes.server_in, pipes.server_out, stdio_front.load_manifest())
    front.start()
    chan = LineChannel(pipes.client_in, pipes.client_out)
    chan.send(INIT)
    init, _ = chan.recv_id(1, timeout=10)
    chan.send(INITIALIZED)
    chan.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    tools, _ = chan.recv_id(2, timeout=10)
    chan.send({"jsonrpc": "2.0", "id": 3, "method": "ping"})
    chan.recv_id(3, timeout=10)
    chan.send({"jsonrpc": "2.0", "id": 30, "method": "prompts/list"})
    assert chan.recv_id(30, timeout=10)[0]["result"]["prompts"][0]["name"] == "memory_guide"
    chan.send({"jsonrpc": "2.0", "id": 31, "method": "resources/templates/list"})
    assert chan.recv_id(31, timeout=10)[0]["result"]["resourceTemplates"]
    # Answered from the manifest: no server has been created yet.
    assert init["result"]["capabilities"]["tools"]["listChanged"] is True
    assert {t["name"] for t in tools["result"]["tools"]} >= {"add_memory", "search_memory"}

    chan.send(call(4, "add_memory", {"text": "queued before the server was up"}))
    # The manifest lists the tools of the default settings (graph_enabled=auto: graph tools too).
    thread = await _serve_in_thread(front, make_settings(tmp_path / "data", graph_enabled="auto"))
    added, before = chan.recv_id(4, timeout=60)
    assert added["result"]["structuredContent"]["results"][0]["event"] == "ADD"
    # The replayed initialize and the tool check were answered to the front, not to the client.
    assert all(m.get("id") not in (stdio_front.REPLAY_INIT_ID, stdio_front.CHECK_TOOLS_ID) for m in before)
    assert not any(m.get("method") == "notifications/tools/list_changed" for m in before)
    chan.send(call(5, "search_memory", {"query": "queued server"}))
    found, _ = chan.recv_id(5, timeout=30)
    assert found["result"]["structuredContent"]["results"][0]["memory"] == "queued before the server was up"
    pipes.client_out.close()
    thread.join(timeout=30)
    assert not thread.is_alive()


async def test_front_tells_the_client_when_the_manifest_is_stale(pipes: Pipes, tmp_path: Path) -> None:
    manifest = stdio_front.load_manifest()
    assert manifest is not None
    stale = {**manifest, "tools_list": {"tools": manifest["tools_list"]["tools"][:2]}}
    front = stdio_front.StdioFront(pipes.server_in, pipes.server_out, stale)
    front.start()
    chan = LineChannel(pipes.client_in, pipes.client_out)
    chan.send(INIT)
    chan.recv_id(1, timeout=10)
    chan.send(INITIALIZED)
    chan.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert len(chan.recv_id(2, timeout=10)[0]["result"]["tools"]) == 2
    thread = await _serve_in_thread(front, make_settings(tmp_path / "data", graph_enabled="auto"))
    changed = chan.recv(timeout=60)
    assert changed == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    chan.send({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
    relisted, _ = chan.recv_id(3, timeout=30)
    assert len(relisted["result"]["tools"]) == len(manifest["tools_list"]["tools"])
    pipes.client_out.close()
    thread.join(timeout=30)


async def test_front_without_manifest_or_with_a_2026_client_defers_to_the_server(
    pipes: Pipes, tmp_path: Path
) -> None:
    front = stdio_front.StdioFront(pipes.server_in, pipes.server_out, None)
    front.start()
    chan = LineChannel(pipes.client_in, pipes.client_out)
    chan.send(INIT)
    thread = await _serve_in_thread(front, make_settings(tmp_path / "data"))
    init, _ = chan.recv_id(1, timeout=60)
    assert init["result"]["serverInfo"]["name"] == "mem0-mcp"
    chan.send(INITIALIZED)
    chan.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert len(chan.recv_id(2, timeout=30)[0]["result"]["tools"]) >= 8
    chan.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": "garbage"})
    bad, _ = chan.recv_id(3, timeout=30)
    assert bad["error"]["code"] == -32600
    pipes.client_out.write(b"{this is not json\n")
    pipes.client_out.flush()
    parse_error = chan.recv(timeout=30)
    assert parse_error["id"] is None and parse_error["error"]["code"] == -32700
    chan.send(call(4, "get_memory", {"memory_id": "missing"}))
    still, _ = chan.recv_id(4, timeout=30)
    assert still["result"]["isError"] is True
    pipes.client_out.close()
    thread.join(timeout=30)


@contextlib.contextmanager
def initialized_serve(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], LineChannel]]:
    """`mem0-mcp serve` as Claude Desktop starts it, past initialize; killed if a test leaves it."""
    data_dir = tmp_path / "data"
    seed_models(data_dir)
    command, env = example_config_env(data_dir)
    with (tmp_path / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
        )
        try:
            chan = LineChannel(proc.stdout, proc.stdin)
            chan.send(INIT)
            chan.recv_id(1, timeout=30)
            chan.send(INITIALIZED)
            yield proc, chan
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def _deep_line(depth: int, msg_id: int) -> bytes:
    """A tools/call whose metadata is nested ``depth`` levels deep: hostile, but one line."""
    head = f'{{"jsonrpc":"2.0","id":{msg_id},"method":"tools/call","params":{{"name":"add_memory",'
    return (head + '"arguments":{"text":"x","metadata":{"k":' + "[" * depth + "]" * depth + "}}}}\n").encode()


@pytest.mark.slow
def test_a_deeply_nested_line_gets_an_error_and_the_server_keeps_serving(tmp_path: Path) -> None:
    """One line nested thousands deep, before and after the engine is live (issue #16)."""
    with initialized_serve(tmp_path) as (proc, chan):
        assert proc.stdin is not None

        def deep_then(msg: dict[str, Any], depth: int, timeout: float) -> dict[str, Any]:
            proc.stdin.write(_deep_line(depth, 90 + msg["id"]))
            proc.stdin.flush()
            chan.send(msg)
            error = chan.recv(timeout=timeout)
            # The client waits for its id: the refusal names it.
            assert error["id"] == 90 + msg["id"] and error["error"]["code"] == -32600, error
            reply, others = chan.recv_id(msg["id"], timeout=timeout)
            assert not others
            return reply

        # Before the engine is live: the front (or the SDK just starting) reads the line.
        for n, depth in enumerate((1_100, 100_000), start=2):
            assert deep_then({"jsonrpc": "2.0", "id": n, "method": "ping"}, depth, 30)["result"] == {}
        chan.send(call(10, "list_memories", {}))
        listed, _ = chan.recv_id(10, timeout=180)
        assert listed["result"]["structuredContent"]["total"] == 0
        # After: the real server and the engine are running.
        for n, depth in enumerate((1_100, 100_000), start=11):
            reply = deep_then(call(n, "add_memory", {"text": f"still serving {n}"}), depth, 60)
            assert reply["result"]["structuredContent"]["results"][0]["event"] == "ADD"
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0


def test_the_depth_guard_reads_ids_and_skips_strings() -> None:
    deep = "[" * 600 + "]" * 600
    assert wire_guard.too_deep(_deep_line(600, 7))
    assert not wire_guard.too_deep(_deep_line(100, 7))
    # Brackets inside strings are text, not nesting.
    assert not wire_guard.too_deep(json.dumps({"id": 1, "text": deep}).encode())
    line = ('{"params": {"id": 5, "x": "\\"id\\": 6"}, "id": "a\\"b", "m": ' + deep + "}").encode()
    assert wire_guard.too_deep_error(line) == {
        "jsonrpc": "2.0",
        "id": 'a"b',
        "error": {"code": -32600, "message": "Invalid Request: nested deeper than 512 levels"},
    }
    no_id = ('{"method": "x", "params": ' + deep + "}").encode()
    assert wire_guard.too_deep_error(no_id)["id"] is None
    assert wire_guard.too_deep_error(no_id)["error"]["code"] == -32700
    assert wire_guard.invalid_message_error(("[" * 100_000).encode())["error"]["code"] == -32700


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.05, 0.5])
def test_sigterm_answers_every_call_in_flight(tmp_path: Path, delay: float) -> None:
    """Claude Desktop quits with SIGTERM: each call already sent is still answered (issue #16)."""
    with initialized_serve(tmp_path) as (proc, chan):
        ids = list(range(100, 120))
        for n in ids:
            chan.send(call(n, "add_memory", {"text": f"in flight {n}"}))
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=180) == 0
        replies = {}
        for line in chan.raw:
            msg = json.loads(line)
            if msg.get("id") in ids:
                replies[msg["id"]] = msg
        assert sorted(replies) == ids
        assert all(r["result"]["structuredContent"]["results"][0]["event"] == "ADD" for r in replies.values())
