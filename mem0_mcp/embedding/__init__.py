"""Local text embeddings: one ``Embedder`` protocol, backends loaded only when chosen."""

from mem0_mcp.embedding.base import BackgroundEmbedder, Embedder, build_embedder

__all__ = ["BackgroundEmbedder", "Embedder", "build_embedder"]
