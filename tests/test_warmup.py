"""First start (issue #14, item 6): ``mem0-mcp warmup`` converts the model once, and first starts
that run at the same time share that one conversion, even when the one that began it is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.server import REPO

pytestmark = pytest.mark.slow


def _warmup(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mem0_mcp.cli.main", "warmup"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_first_starts_share_one_conversion_even_when_its_starter_quits(tmp_path: Path) -> None:
    models = tmp_path / "models"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env.update(
        PYTHONPATH=str(REPO),
        MEM0_MCP_DATA_DIR=str(tmp_path / "data"),
        MEM0_MCP_MODEL_CACHE_DIR=str(models),
        MEM0_MCP_EMBEDDER="onnx",
    )
    first = _warmup(env)
    deadline = time.monotonic() + 120
    while not list(models.glob(".*.tmp-*")):  # the conversion is under way
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the conversion never started"
        time.sleep(0.1)
    # The client that started the server quits (Claude Desktop closing, a short CLI call).
    first.send_signal(signal.SIGKILL)
    first.wait()
    others = [_warmup(env) for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in others]
    for proc, (out, err) in zip(others, outputs, strict=True):
        assert proc.returncode == 0, err
        # Neither converted again: they waited for the conversion already under way.
        assert "conversion already cached" in out, out + err
    assert [p.name for p in models.iterdir() if not p.name.startswith(".")] == [
        next(p.name for p in models.iterdir() if p.is_dir() and not p.name.startswith("."))
    ]
    assert not list(models.glob(".*.tmp-*")) and not list(models.glob(".*.old-*"))
    # Once converted, a warmup only loads.
    t0 = time.perf_counter()
    again = subprocess.run(
        [sys.executable, "-m", "mem0_mcp.cli.main", "warmup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0 and "conversion already cached" in again.stdout
    assert time.perf_counter() - t0 < 30
