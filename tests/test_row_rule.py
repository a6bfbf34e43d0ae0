"""One rule decides how a row is indexed and embedded: add, update, the memory manager and
reindex all follow it, so `reindex --force` with the same model changes no vector and no ranking.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mem0_mcp.config import Settings
from mem0_mcp.embedding import Embedder
from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.reindex import reindex
from mem0_mcp.engine.rows import EmbedInput, embed_inputs
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.fake_llm import FakeLLM, decisions, facts
from tests.support.server import MEM0_MCP_BIN, seed_models

CONVERSATION = [
    {"role": "user", "name": "Ann", "content": "I adopted a greyhound last month."},
    {"role": "assistant", "content": "Congratulations! What is the dog's name?"},
    {"role": "user", "name": "Ann", "content": "Pixel. She loves long walks by the river."},
    {"role": "assistant", "content": "Lovely. How often do you walk her?"},
    {"role": "user", "name": "Ann", "content": "Twice a day, before and after work.\nSometimes three times."},
    {"role": "assistant", "content": "That sounds like a happy dog."},
]
QUERIES = [
    "What is the name of Ann's dog?",
    "How often does Ann walk the dog?",
    "Where does Pixel like to walk?",
    "What pet did Ann adopt?",
    "Which testing framework is preferred?",
    "When does Ann go walking?",
]


def build(mem: Memory) -> None:
    added = mem.add(CONVERSATION, user_id="ann", timestamp="2026-11-01T10:00:00Z").results
    mem.add("Prefers pytest over unittest", user_id="ann")
    # A conversation row edited by hand keeps its neighbours; one deleted leaves its neighbours be.
    mem.update(added[2].id, text="Pixel. She loves long walks in the park.")
    mem.delete(added[5].id)


def vectors(mem: Memory) -> dict[str, np.ndarray]:
    mem.flush()
    rows = mem.storage.vectors.query("", columns=("id", "vector"))
    return {r["id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}


def rankings(mem: Memory) -> list[list[tuple[str, float]]]:
    return [
        [(hit.id, round(hit.score or 0.0, 4)) for hit in mem.search(q, user_id="ann", limit=5).results]
        for q in QUERIES
    ]


def same_after_reindex(settings: Settings, embedder: Embedder) -> None:
    mem = Memory(settings, embedder=embedder)
    try:
        before_vectors, before_rankings = vectors(mem), rankings(mem)
    finally:
        mem.close()
    result = reindex(settings, embedder=embedder, force=True)
    assert result.done and result.rows == len(before_vectors)
    mem = Memory(settings, embedder=embedder)
    try:
        after_vectors, after_rankings = vectors(mem), rankings(mem)
    finally:
        mem.close()
    assert after_vectors.keys() == before_vectors.keys()
    for key, old in before_vectors.items():
        cosine = float(old @ after_vectors[key] / (np.linalg.norm(old) * np.linalg.norm(after_vectors[key])))
        assert cosine >= 0.9999, (key, cosine)
    assert after_rankings == before_rankings


@pytest.mark.parametrize("mode", ["mixed", "joint"])
def test_reindex_with_the_same_model_changes_nothing(tmp_path: Path, mode: str) -> None:
    settings = make_settings(tmp_path / "data", context_vectors=mode)
    embedder = FakeEmbedder()
    mem = Memory(settings, embedder=embedder)
    try:
        build(mem)
    finally:
        mem.close()
    same_after_reindex(settings, embedder)


def test_rows_of_the_memory_manager_follow_the_rule(tmp_path: Path) -> None:
    """Facts the LLM adds or rewrites (even over a conversation row) are embedded as the rule says."""
    llm = FakeLLM()
    settings = make_settings(tmp_path / "data", llm_single_call=False)
    embedder = FakeEmbedder()
    mem = Memory(settings, embedder=embedder, llm=llm)
    try:
        added = mem.add(CONVERSATION[:3], user_id="ann").results
        llm.push(
            facts("Ann's greyhound is called Pixel", "Ann walks Pixel by the river"),
            decisions({"fact": 1, "event": "UPDATE", "id": 0, "text": "Ann walks Pixel in the park"}),
        )
        mem.add("My greyhound Pixel and I walk in the park now", user_id="ann", infer=True)
        mem.flush()
        for row in mem.storage.vectors.query(
            "", columns=("id", "memory", "name", "context", "neighbours", "vector")
        ):
            expected = embed_inputs([EmbedInput.of_row(row)], embedder.embed, "mixed")[0]
            assert np.allclose(row["vector"], expected, atol=1e-6), row["memory"]
        assert {r.memory for r in mem.get_all(user_id="ann").results} >= {"Ann's greyhound is called Pixel"}
        assert added
    finally:
        mem.close()
    same_after_reindex(settings, embedder)


def test_a_table_of_an_older_version_gets_the_new_column(tmp_path: Path) -> None:
    """Stores written before rows kept their neighbours open, read and reindex as before."""
    import lancedb

    settings = make_settings(tmp_path / "data", write_behind=False)
    embedder = FakeEmbedder()
    mem = Memory(settings, embedder=embedder)
    try:
        mem.add(CONVERSATION[:3], user_id="ann")
    finally:
        mem.close()
    tbl = lancedb.connect(str(settings.lance_dir)).open_table("memories")
    tbl.drop_columns(["neighbours"])
    assert "neighbours" not in tbl.schema.names
    mem = Memory(settings, embedder=embedder)
    try:
        assert mem.search("greyhound", user_id="ann").results
        mem.add("Prefers pytest over unittest", user_id="ann")
        assert mem.get_all(user_id="ann").total == 4
    finally:
        mem.close()
    same_after_reindex(settings, embedder)


@pytest.mark.slow
def test_cli_reindex_force_with_the_bundled_model(tmp_path: Path) -> None:
    """As a user would: the real model, the real command."""
    from mem0_mcp.embedding import BackgroundEmbedder

    data = tmp_path / "data"
    data.mkdir()
    seed_models(data)
    settings = make_settings(data, llm_provider="none")
    embedder = BackgroundEmbedder.from_settings(settings)
    mem = Memory(settings, embedder=embedder)
    try:
        build(mem)
        before_vectors, before_rankings = vectors(mem), rankings(mem)
    finally:
        mem.close()
    env = {**os.environ, "MEM0_MCP_DATA_DIR": str(data), "MEM0_MCP_LLM_PROVIDER": "none"}
    out = subprocess.run(
        [str(MEM0_MCP_BIN), "reindex", "--force", "--yes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    mem = Memory(settings, embedder=embedder)
    try:
        after_vectors, after_rankings = vectors(mem), rankings(mem)
    finally:
        mem.close()
    for key, old in before_vectors.items():
        assert float(old @ after_vectors[key]) >= 0.9999, key
    assert [[i for i, _ in r] for r in after_rankings] == [[i for i, _ in r] for r in before_rankings]
    for old_r, new_r in zip(before_rankings, after_rankings, strict=True):
        assert np.allclose([s for _, s in old_r], [s for _, s in new_r], atol=1e-3)


def test_reindex_gives_old_rows_todays_duplicate_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", write_behind=False)
    embedder = FakeEmbedder()
    mem = Memory(settings, embedder=embedder)
    try:
        item = mem.add("Prefers dark roast coffee, black", user_id="u").results[0]
        mem.storage.vectors.update(item.id, {"hash": "an-old-exact-text-hash"})
    finally:
        mem.close()
    reindex(settings, embedder=embedder, force=True)
    mem = Memory(settings, embedder=embedder)
    try:
        again = mem.add("prefers dark roast coffee black.", user_id="u").results[0]
        assert (again.event, again.id) == ("NONE", item.id)
    finally:
        mem.close()
