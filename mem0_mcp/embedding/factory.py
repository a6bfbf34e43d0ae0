"""Build the configured embedder, importing only the backend that is chosen.

``auto`` tries ONNX (exported once, then torch-free) and falls back to sentence-transformers
when the model cannot be served that way; ``onnx`` and ``sentence-transformers`` insist.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from mem0_mcp.errors import ConfigError

if TYPE_CHECKING:
    from mem0_mcp.config import Settings
    from mem0_mcp.embedding.base import Embedder
    from mem0_mcp.embedding.onnx_runtime import OnnxEmbedder

logger = logging.getLogger(__name__)


def build_onnx_embedder(settings: Settings) -> OnnxEmbedder:
    """The ONNX embedder of ``settings.embedder_model``, exporting it first if no export is cached.

    Raises ImportError without onnxruntime/tokenizers, :class:`OnnxUnavailableError` (a
    ConfigError) for a model the backend cannot serve, and other errors for a broken export.
    """
    from mem0_mcp.embedding.onnx_cache import ensure_exported
    from mem0_mcp.embedding.onnx_runtime import OnnxEmbedder

    export_t0 = time.perf_counter()
    folder, exported = ensure_exported(settings.embedder_model, settings.models_dir)
    return OnnxEmbedder(
        folder,
        name=settings.embedder_model,
        batch_size=settings.embedding_batch_size,
        threads=settings.embedder_threads,
        export_seconds=time.perf_counter() - export_t0 if exported else None,
    )


def build_embedder(settings: Settings) -> Embedder:
    """Import and load the configured backend (slow: call it from a background thread).

    Raises :class:`ConfigError` when ``embedder='onnx'`` cannot be served, and the backend's
    own errors when the model cannot be loaded at all.
    """
    choice = settings.embedder
    if choice in ("auto", "onnx"):
        try:
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401
        except ImportError as exc:
            if choice == "onnx":
                raise ConfigError(
                    "embedder: 'onnx' needs onnxruntime and tokenizers; pip install onnxruntime tokenizers "
                    "or set MEM0_MCP_EMBEDDER=sentence-transformers"
                ) from exc
        else:
            try:
                return build_onnx_embedder(settings)
            except Exception as exc:
                if choice == "onnx":
                    raise
                logger.warning("ONNX embedder unavailable (%s); using sentence-transformers", exc)
    from mem0_mcp.embedding.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        settings.embedder_model,
        batch_size=settings.embedding_batch_size,
        threads=settings.embedder_threads,
    )
