"""The sentence-transformers backend: any model it loads, on the CPU (imports torch, ~4 s)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mem0_mcp.embedding.base import resolve_model_path


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, on the CPU, offline when the model is a local folder."""

    def __init__(self, model: str, *, batch_size: int = 64, threads: int = 0) -> None:
        """Load ``model`` (the bundled alias, a folder or a hub name); ``threads`` 0: torch decides.

        Raises whatever sentence-transformers raises for a model it cannot load.
        """
        self._name = model
        path = resolve_model_path(model)
        if Path(path).exists():
            # A local folder never needs the hub; without this, transformers may still try.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if threads:
            import torch

            torch.set_num_threads(threads)
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(path, device="cpu")
        self._batch_size = batch_size
        getter = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dim = getter()
        self._dimension = int(dim) if dim else int(self.embed(["x"]).shape[1])

    @property
    def name(self) -> str:
        """The model setting this embedder was built from."""
        return self._name

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``: shape (len(texts), dimension), float32, each of unit length."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        out = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)
