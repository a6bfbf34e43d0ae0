"""Server "nodes" in processes of their own: the CLI's HTTP serve with the tests' FakeEmbedder.

The settings have no fake embedder (a deployment never wants one), so a node is this module run
as a script: ``load_settings()`` from its environment (``MEM0_MCP_*``, the provider variables of
``MEM0_MCP_STORE_URI``), the engine built by ``create_server(memory_factory=...)`` with the
FakeEmbedder, and ``serve_http`` as ``mem0-mcp serve --transport http`` runs it. Used by the
multi-node test (tests/test_object_store_load.py) and benchmarks/object_store.py.

    python -m tests.support.nodes --port 8123   # with MEM0_MCP_DATA_DIR etc. in the environment
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.s3 import S3Bucket, open_bucket

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_node(data_dir: Path, port: int, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start one node on 127.0.0.1:``port`` with its own ``data_dir``; ``env`` adds to (and
    overrides) this process's environment minus its ``MEM0_MCP_*`` variables. The node's log is
    ``<data_dir>.log``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    full.update(
        PYTHONPATH=str(REPO),
        MEM0_MCP_DATA_DIR=str(data_dir),
        MEM0_MCP_LLM_PROVIDER="none",
        MEM0_MCP_LOG_LEVEL="WARNING",
    )
    full.update(env)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log = open(data_dir.with_name(f"{data_dir.name}.log"), "ab")  # noqa: SIM115 (the child owns it)
    cmd = [sys.executable, "-m", "tests.support.nodes", "--port", str(port)]
    return subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=full)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Block until the node accepts connections (raises if it exits or takes over ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode} (see its .log)")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"process on port {port} did not listen within {timeout} s")


def stop_node(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def s3_process(bucket: str = "mem0-test") -> Iterator[S3Bucket]:
    """tests/support/s3.py's emulator in a process of its own (``moto_server``), so that its
    request handling does not share the GIL with the test's clients: the nodes' latency is then
    the store's, not the test process's."""
    port = free_port()
    log = open(os.devnull, "wb")  # noqa: SIM115 (the child owns it)
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_listening(port, proc, timeout=60)
        yield open_bucket(f"http://127.0.0.1:{port}", bucket)
    finally:
        stop_node(proc)


def main(argv: list[str] | None = None) -> None:
    """The node process: serve streamable HTTP (or SSE) with the FakeEmbedder until SIGTERM."""
    import anyio

    from mem0_mcp.cli.main import configure_logging
    from mem0_mcp.config import load_settings
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.server.app import create_server
    from mem0_mcp.server.http_app import serve_http
    from tests.support.engine import FakeEmbedder

    p = argparse.ArgumentParser()
    p.add_argument("--transport", default="http")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    settings = load_settings(transport=args.transport, host="127.0.0.1", port=args.port)
    configure_logging(settings.log_level)
    server = create_server(settings, memory_factory=lambda s: Memory(s, embedder=FakeEmbedder()))
    anyio.run(lambda: serve_http(server, transport=args.transport))
    sys.stderr.flush()
    os._exit(0)  # the engine's worker threads must not hold the exit up


if __name__ == "__main__":
    main()
