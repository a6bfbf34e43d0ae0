"""Local text embeddings: one ``Embedder`` protocol, backends loaded only when chosen.

- ``base``: the protocol and shared helpers; ``factory``: ``build_embedder`` (imports the chosen
  backend lazily); ``background``: ``BackgroundEmbedder`` (loads in a thread).
- Backends: ``sentence_transformers`` (torch) and ``onnx_runtime`` (onnxruntime + tokenizers),
  whose one-time export lives in ``onnx_export`` (torch, run in a child process) and is kept by
  ``onnx_cache``; ``onnx_format`` is the export folder's layout they share.
"""

from mem0_mcp.embedding.background import BackgroundEmbedder
from mem0_mcp.embedding.base import Embedder
from mem0_mcp.embedding.factory import build_embedder

__all__ = ["BackgroundEmbedder", "Embedder", "build_embedder"]
