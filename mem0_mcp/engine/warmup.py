"""Load the configured embedder once ahead of any client: the one-time ONNX conversion of the
model happens here (``mem0-mcp warmup``, run by ``make install``) instead of in a first call."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mem0_mcp.config import Settings
from mem0_mcp.embedding import build_embedder


@dataclass(frozen=True)
class WarmupResult:
    """What was loaded, how, and how long the conversion (if it ran now) and the load took."""

    model: str
    backend: str
    dimension: int
    seconds: float
    export_seconds: float | None


def warm_up(settings: Settings) -> WarmupResult:
    """Build the configured embedder (converting the model to ONNX if no export is cached) and
    embed one sentence with it.

    Takes the settings (``embedder``, ``embedder_model``, ``models_dir``); returns what was
    loaded. Raises :class:`~mem0_mcp.errors.ConfigError` when the configured backend cannot
    serve the model, and the backend's own errors when it cannot be loaded at all.
    """
    t0 = time.perf_counter()
    embedder = build_embedder(settings)
    embedder.embed(["warm up"])
    from mem0_mcp.embedding.onnx_runtime import OnnxEmbedder  # imports nothing heavy

    onnx = embedder if isinstance(embedder, OnnxEmbedder) else None
    return WarmupResult(
        model=settings.embedder_model,
        backend="sentence-transformers" if onnx is None else "onnx",
        dimension=embedder.dimension,
        seconds=time.perf_counter() - t0,
        export_seconds=None if onnx is None else onnx.export_seconds,
    )
