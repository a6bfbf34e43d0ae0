"""Shared fixtures: real LanceDB/SQLite in tmp_path, a deterministic fake embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mem0_mcp.config import Settings
from mem0_mcp.engine.memory import Memory
from tests.support.engine import FakeEmbedder, make_settings

# `serve`: local servers speaking the LLM providers' wire formats; `bucket`, `s3_env`, `s3_uri`:
# an S3 emulator.
pytest_plugins = ["tests.support.provider_server", "tests.support.s3"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def memory(settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[Memory]:
    mem = Memory(settings, embedder=fake_embedder)
    yield mem
    mem.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every `async def` test runs on anyio's asyncio backend without a per-test marker.
    import inspect

    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and inspect.iscoroutinefunction(fn):
            item.add_marker(pytest.mark.anyio)
