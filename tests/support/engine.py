"""The engine's test doubles: a deterministic embedder and settings on a temporary data dir."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mem0_mcp.config import Settings

if TYPE_CHECKING:
    from mem0_mcp.engine.memory import Memory

_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    """Bag of hashed words: texts sharing words are close, deterministic, no model to load."""

    def __init__(self, dimension: int = 64, name: str = "fake-bow") -> None:
        self._dimension = dimension
        self._name = name
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[i, h % self._dimension] += 1.0
            if not out[i].any():
                out[i, 0] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    # The relevance gate is calibrated for the bundled model; the fake embedder's cosines are not.
    base: dict[str, object] = {
        "data_dir": data_dir,
        "llm_provider": "none",
        "user_id": "tester",
        "search_threshold": 0.0,
        # Tests of the memory manager script every LLM call: graph extraction (on by default
        # with an LLM) is asked for by the graph tests, which say graph_enabled.
        "graph_enabled": "false",
        # Graph tests read an add's relations from its result; the background write has its own.
        "graph_background": False,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def bundled_memory(data_dir: Path, **overrides: object) -> Memory:
    """A Memory on the bundled model (the ONNX export seeded from the test cache), on
    ``make_settings`` with ``overrides``."""
    from mem0_mcp.embedding import BackgroundEmbedder
    from mem0_mcp.engine.memory import Memory
    from tests.support.server import seed_models

    data_dir.mkdir(parents=True, exist_ok=True)
    seed_models(data_dir)
    settings = make_settings(data_dir, **overrides)
    return Memory(settings, embedder=BackgroundEmbedder.from_settings(settings))
