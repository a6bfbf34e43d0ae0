#!/usr/bin/env python3
"""What the MCP protocol adds to a search: stdio and streamable HTTP vs the engine in-process.

One run, one data dir with N memories in one user's scope (LoCoMo turns, the same texts as
benchmarks/latency.py), the real bundled embedder:

* in-process: ``Memory.search`` p50/p95 (query embedding included);
* stdio: ``mem0-mcp serve`` spawned as Claude Desktop does; time from spawn to the
  ``initialize`` result, to the ``tools/list`` result and to the first search result; then
  search round trips (``tools/call search_memory``) p50/p95;
* http: ``mem0-mcp serve --transport http`` with a bearer token; time from spawn to the
  ``initialize`` result (port polling included) and to the first search result; round trips.

Clients are minimal raw JSON-RPC (no SDK), so the figures are server + transport.

    python benchmarks/protocol.py [--n 10000] [--searches 300] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.latency import DATA, RESULTS, corpus, numbered, summary  # noqa: E402

BIN = Path(sys.executable).with_name("mem0-mcp")
USER = "bench"
TOKEN = "protocol-benchmark-token-0123456789"
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


def search_call(i: int, query: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": "search_memory", "arguments": {"query": query, "limit": 10}},
    }


def populate(data_dir: Path, n: int, texts: list[str]) -> float:
    """Fill the store to n memories for USER (kept between runs); returns seconds spent."""
    from mem0_mcp.config import load_settings
    from mem0_mcp.engine.memory import Memory

    t0 = time.perf_counter()
    memory = Memory(load_settings(data_dir=data_dir, llm_provider="none"))
    try:
        have = memory.get_all(user_id=USER, limit=1).total
        pool = numbered(texts, n)
        for start in range(have, n, 500):
            batch = [{"role": "user", "content": t} for t in pool[start : min(n, start + 500)]]
            memory.add(batch, user_id=USER)
            print(f"  populated {min(n, start + 500)}/{n}", file=sys.stderr)
    finally:
        memory.close()
    return time.perf_counter() - t0


def in_process(data_dir: Path, queries: list[str], searches: int) -> dict[str, Any]:
    from mem0_mcp.config import load_settings
    from mem0_mcp.engine.memory import Memory

    memory = Memory(load_settings(data_dir=data_dir, llm_provider="none"))
    try:
        for q in queries[:10]:
            memory.search(q, user_id=USER, limit=10)
        lat = []
        for i in range(searches):
            t0 = time.perf_counter()
            memory.search(queries[i % len(queries)], user_id=USER, limit=10)
            lat.append(time.perf_counter() - t0)
    finally:
        memory.close()
    return summary(lat)


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env.update(MEM0_MCP_DATA_DIR=str(data_dir), MEM0_MCP_USER_ID=USER, MEM0_MCP_LLM_PROVIDER="none")
    env.update(extra)
    return env


class Lines:
    def __init__(self, stream: Any) -> None:
        self.q: queue.Queue[bytes | None] = queue.Queue()

        def pump() -> None:
            for line in iter(stream.readline, b""):
                self.q.put(line)
            self.q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_id(self, msg_id: int, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError("server closed stdout")
            msg = json.loads(line)
            if msg.get("id") == msg_id and "method" not in msg:
                if "error" in msg or msg["result"].get("isError"):
                    raise RuntimeError(f"server error: {msg}")
                return msg


def stdio(data_dir: Path, queries: list[str], searches: int) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN), "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env_for(data_dir),
    )
    assert proc.stdin is not None
    stdin = proc.stdin

    def send(msg: dict[str, Any]) -> None:
        stdin.write(json.dumps(msg).encode() + b"\n")
        stdin.flush()

    try:
        lines = Lines(proc.stdout)
        send(INIT)
        lines.wait_id(0)
        t_init = time.perf_counter() - started
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        lines.wait_id(1)
        t_list = time.perf_counter() - started
        send(search_call(2, queries[0]))
        lines.wait_id(2)
        t_first = time.perf_counter() - started
        for i in range(10):
            send(search_call(3 + i, queries[i % len(queries)]))
            lines.wait_id(3 + i)
        lat = []
        for i in range(searches):
            t0 = time.perf_counter()
            send(search_call(100 + i, queries[i % len(queries)]))
            lines.wait_id(100 + i)
            lat.append(time.perf_counter() - t0)
        stdin.close()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return {
        "initialize_s": t_init,
        "tools_list_s": t_list,
        "first_search_s": t_first,
        "round_trip": summary(lat),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sse_json(body: str) -> dict[str, Any]:
    for line in body.splitlines():
        if line.startswith("data:"):
            return json.loads(line[5:])
    return json.loads(body)


def http(data_dir: Path, queries: list[str], searches: int) -> dict[str, Any]:
    import httpx2

    port = _free_port()
    base = f"http://127.0.0.1:{port}/mcp"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN), "serve", "--transport", "http", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env_for(data_dir, MEM0_MCP_AUTH_TOKENS=json.dumps({TOKEN: USER}), MEM0_MCP_LOG_LEVEL="WARNING"),
    )
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    try:
        with httpx2.Client(timeout=300) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    r = client.post(base, json=INIT, headers=headers)
                    break
                except httpx2.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.01)
            r.raise_for_status()
            t_init = time.perf_counter() - started
            headers["mcp-session-id"] = r.headers["mcp-session-id"]
            headers["mcp-protocol-version"] = "2025-06-18"
            client.post(base, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)

            def search(i: int, q: str) -> None:
                resp = client.post(base, json=search_call(i, q), headers=headers)
                resp.raise_for_status()
                msg = _sse_json(resp.text)
                if "error" in msg or msg["result"].get("isError"):
                    raise RuntimeError(f"server error: {msg}")

            search(1, queries[0])
            t_first = time.perf_counter() - started
            for i in range(10):
                search(2 + i, queries[i % len(queries)])
            lat = []
            for i in range(searches):
                t0 = time.perf_counter()
                search(100 + i, queries[i % len(queries)])
                lat.append(time.perf_counter() - t0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"initialize_s": t_init, "first_search_s": t_first, "round_trip": summary(lat)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="memories in scope (default 10000)")
    p.add_argument("--searches", type=int, default=300)
    p.add_argument("--data-dir", type=Path, help="reuse/keep this data dir (default: a temp dir)")
    p.add_argument("--out", type=Path, default=RESULTS / "protocol.json")
    args = p.parse_args()

    texts, questions = corpus(DATA)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="mem0-protocol-"))
    try:
        print(f"data dir {data_dir}: populating {args.n} memories", file=sys.stderr)
        populate_s = populate(data_dir, args.n, texts)
        print("in-process search", file=sys.stderr)
        inproc = in_process(data_dir, questions, args.searches)
        print("stdio", file=sys.stderr)
        over_stdio = stdio(data_dir, questions, args.searches)
        print("streamable http", file=sys.stderr)
        over_http = http(data_dir, questions, args.searches)
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)

    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "n": args.n,
        "searches": args.searches,
        "populate_s": populate_s,
        "in_process": inproc,
        "stdio": over_stdio,
        "http": over_http,
        "added_p50_ms": {
            "stdio": over_stdio["round_trip"]["p50_ms"] - inproc["p50_ms"],
            "http": over_http["round_trip"]["p50_ms"] - inproc["p50_ms"],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\nsearch at {args.n} memories in scope, {args.searches} searches each")
    print(f"{'path':<12}{'p50 ms':>10}{'p95 ms':>10}{'+p50 ms':>10}")
    print(f"{'in-process':<12}{inproc['p50_ms']:>10.2f}{inproc['p95_ms']:>10.2f}{'':>10}")
    for name, r in (("stdio", over_stdio), ("http", over_http)):
        rt = r["round_trip"]
        print(f"{name:<12}{rt['p50_ms']:>10.2f}{rt['p95_ms']:>10.2f}{rt['p50_ms'] - inproc['p50_ms']:>10.2f}")
    print(
        f"\nstdio: initialize {over_stdio['initialize_s'] * 1000:.0f} ms, tools/list "
        f"{over_stdio['tools_list_s'] * 1000:.0f} ms, "
        f"first search {over_stdio['first_search_s']:.2f} s after spawn"
    )
    print(
        f"http: initialize {over_http['initialize_s']:.2f} s, first search "
        f"{over_http['first_search_s']:.2f} s after spawn"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
