"""Every ```python block of README.md runs as printed (issue #14, item 7).

Each block runs in a fresh interpreter against a temporary home and data dir. A block that reads
``MEM0_MCP_TOKEN`` talks to a server over HTTP: the test starts one (streamable HTTP, a token,
the bundled model) and passes ``MEM0_MCP_TOKEN`` and ``MEM0_MCP_URL``. A block that cannot run
here is marked by the line ``<!-- snippet: not run -->`` right above its fence; keep those rare.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.server import MODEL_CACHE, REPO

NOT_RUN = "<!-- snippet: not run -->"
TOKEN = "readme-snippet-token-0123456789"
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)


def python_blocks() -> list[tuple[int, str]]:
    """(line number, code) of every runnable ```python block of the README."""
    text = (REPO / "README.md").read_text()
    return [
        (text.count("\n", 0, m.start("code")), m.group("code"))
        for m in _BLOCK.finditer(text)
        if m.group("before").strip() != NOT_RUN
    ]


def test_the_readme_has_python_snippets_and_few_exceptions() -> None:
    assert len(python_blocks()) >= 2
    assert (REPO / "README.md").read_text().count(NOT_RUN) <= 1


@contextmanager
def http_server(home: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(home)
    env.update(MEM0_MCP_AUTH_TOKENS=f'{{"{TOKEN}": "alice"}}', PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mem0_mcp.cli.main", "serve", "--transport", "http", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the HTTP server did not come up"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    # The stdio client passes only HOME, PATH and a few more to the server it starts: the data
    # dir is the default one under this HOME, and `mem0-mcp` is found on PATH.
    env["HOME"] = str(home)
    env.pop("XDG_DATA_HOME", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@pytest.mark.slow
@pytest.mark.parametrize(("line", "code"), python_blocks(), ids=[f"line{n}" for n, _ in python_blocks()])
def test_readme_snippet_runs(line: int, code: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = home / ".local" / "share" / "mem0-mcp"
    if MODEL_CACHE.is_dir():  # the model conversion, done once by the other slow tests
        data.mkdir(parents=True)
        shutil.copytree(MODEL_CACHE, data / "models")
    script = tmp_path / "snippet.py"
    script.write_text(code + "\n")
    env = _env(home)
    if "MEM0_MCP_TOKEN" in code:
        with http_server(home) as url:
            env.update(MEM0_MCP_TOKEN=TOKEN, MEM0_MCP_URL=url)
            proc = subprocess.run(
                [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
            )
    else:
        proc = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
        )
    assert proc.returncode == 0, f"README.md line {line}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), "the snippet printed nothing"
