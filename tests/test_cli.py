"""The mem0-mcp command: argument handling, refusals at start, a real HTTP server process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from mem0_mcp import __version__
from tests.support.server import INITIALIZE, MEM0_MCP_BIN, TOKEN_ALICE, seed_models

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env["MEM0_MCP_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MEM0_MCP_BIN), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_version(tmp_path: Path) -> None:
    done = run(["--version"], clean_env(tmp_path))
    assert done.returncode == 0 and __version__ in done.stdout


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["serve", "--transport", "http"], {}, "auth_tokens"),
        (
            ["serve", "--transport", "sse", "--host", "0.0.0.0"],
            {"MEM0_MCP_ALLOW_UNAUTHENTICATED_LOOPBACK": "true"},
            "loopback",
        ),
        (["serve", "--transport", "http"], {"MEM0_MCP_PORT": "not-a-port"}, "port"),
        (["serve"], {"MEM0_MCP_MAX_LIMIT": "0"}, "max_limit"),
        (["--transport", "carrier-pigeon"], {}, "invalid choice"),
        (["frobnicate"], {}, "unknown command"),
        (["serve", "--transport", "http", "--allowed-host", "http://x.example"], {}, "allowed_hosts"),
        (["serve", "--transport", "http"], {"MEM0_MCP_ALLOWED_HOSTS": "a.example/mcp"}, "allowed_hosts"),
        (["reindex", "--yes"], {}, "nothing to re-embed"),
        (["reindex", "--batch-size", "0"], {}, "--batch-size"),
    ],
)
@pytest.mark.slow
def test_bad_configuration_fails_at_start_naming_the_setting(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    done = run(args, clean_env(tmp_path, **env))
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_http_process(tmp_path: Path) -> None:
    port = _free_port()
    env = clean_env(tmp_path, MEM0_MCP_AUTH_TOKENS=json.dumps({TOKEN_ALICE: "alice"}))
    seed_models(tmp_path / "data")
    stdout_path, stderr_path = tmp_path / "stdout", tmp_path / "stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [str(MEM0_MCP_BIN), "serve", "--transport", "http", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx2.Client(timeout=10) as http:
                deadline = time.monotonic() + 60
                while True:
                    assert proc.poll() is None, stderr_path.read_text()
                    try:
                        health = http.get(f"{base}/health")
                        break
                    except httpx2.TransportError:
                        assert time.monotonic() < deadline, "server did not come up"
                        time.sleep(0.1)
                assert health.status_code == 200 and health.json()["status"] == "ok"
                assert http.post(f"{base}/mcp", json=INITIALIZE, headers=ACCEPT).status_code == 401
                ok = http.post(
                    f"{base}/mcp",
                    json=INITIALIZE,
                    headers={**ACCEPT, "Authorization": f"Bearer {TOKEN_ALICE}"},
                )
                assert ok.status_code == 200
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    # Logs (uvicorn's access log included) go to stderr, never stdout.
    assert stdout_path.read_bytes() == b""
    assert "POST /mcp" in stderr_path.read_text()
