"""`mem0-mcp reindex`: a store built with one embedder moves to another without losing anything."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mem0_mcp.cli import main as cli
from mem0_mcp.config import Settings
from mem0_mcp.engine import reindex as rx
from mem0_mcp.engine.memory import Memory
from mem0_mcp.engine.rows import EmbedInput, embed_inputs
from mem0_mcp.errors import EmbedderMismatchError, StoreError
from mem0_mcp.stores.locks import WriteLock
from tests.support.engine import FakeEmbedder, make_settings

A = ("model-a", 64)
B = ("model-b", 32)

CONVERSATION = [
    {"role": "user", "name": "Ann", "content": "I adopted a greyhound called Pixel"},
    {"role": "assistant", "content": "Lovely, how old is Pixel?"},
    {"role": "user", "name": "Ann", "content": "Three, she loves long walks on the beach"},
]


def embedder(model: tuple[str, int]) -> FakeEmbedder:
    return FakeEmbedder(dimension=model[1], name=model[0])


class FailingEmbedder(FakeEmbedder):
    """Embeds ``good_batches`` batches, then fails: a model crashing mid-way."""

    def __init__(self, good_batches: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.good_batches = good_batches

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.calls >= self.good_batches:
            raise RuntimeError("model crashed")
        return super().embed(texts)


def build_store(settings: Settings) -> dict[str, str]:
    """A store on model A: verbatim texts, a conversation with speakers, an update, a delete."""
    mem = Memory(settings, embedder=embedder(A))
    ids = {}
    for i in range(20):
        ids[f"note{i}"] = mem.add(f"note {i} about gardening tomatoes", user_id="u").results[0].id
    conv = mem.add(CONVERSATION, user_id="u", metadata={"source": "chat"})
    ids["pixel"] = conv.results[0].id
    ids["walks"] = conv.results[2].id
    ids["sailing"] = mem.add("likes sailing on weekends", user_id="v").results[0].id
    mem.update(ids["sailing"], text="likes sailing and kayaking on weekends")
    gone = mem.add("a memory that will be deleted", user_id="u").results[0].id
    mem.delete(gone)
    ids["gone"] = gone
    mem.close()
    return ids


def snapshot(mem: Memory) -> dict[str, dict]:
    """Every row as the engine returns it, by id, and everything of the history."""
    rows = {}
    for scope in ("u", "v"):
        page = mem.get_all(user_id=scope, limit=100, include_superseded=True)
        for item in page.results:
            rows[item.id] = item.model_dump()
    return rows


@pytest.fixture
def store(tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    settings = make_settings(tmp_path / "data", embedding_batch_size=4)
    return settings, build_store(settings)


def test_mismatch_names_the_command(store: tuple[Settings, dict[str, str]]) -> None:
    settings, _ = store
    with pytest.raises(EmbedderMismatchError, match="`mem0-mcp reindex`"):
        Memory(settings, embedder=embedder(B))


def test_reindex_moves_the_store_to_the_new_model(store: tuple[Settings, dict[str, str]]) -> None:
    settings, ids = store
    before_mem = Memory(settings, embedder=embedder(A))
    before = snapshot(before_mem)
    history_before = {k: [h.model_dump() for h in before_mem.history(i)] for k, i in ids.items()}
    before_mem.close()

    seen: list[tuple[int, int]] = []
    new = embedder(B)
    result = rx.reindex(settings, embedder=new, progress=lambda d, t: seen.append((d, t)))
    total = len(before)
    assert result.done and result.rows == total == 24
    assert (result.old_model, result.new_model) == ("model-a", "model-b")
    assert (result.old_dimension, result.new_dimension) == (64, 32)
    # Batches of embedding_batch_size (4), progress after each.
    assert new.calls == 6 and seen[-1] == (total, total) and len(seen) == 6
    meta = json.loads((settings.data_dir / "store.json").read_text())
    assert meta == {"embedder_model": "model-b", "dimension": 32}

    with pytest.raises(EmbedderMismatchError):
        Memory(settings, embedder=embedder(A))
    mem = Memory(settings, embedder=embedder(B))
    try:
        assert snapshot(mem) == before  # every row, every column but the vector, unchanged
        assert mem.stats().memories == total
        history = {k: [h.model_dump() for h in mem.history(i)] for k, i in ids.items()}
        assert history == history_before  # nothing recorded per row
        # Dense and full-text search work on the new vectors and indexes.
        hits = mem.search("greyhound Pixel", user_id="u", limit=3).results
        assert hits[0].id == ids["pixel"]
        assert mem.search("kayaking", user_id="v").results[0].id == ids["sailing"]
        dense = mem.storage.vectors.vector_search(
            embedder(B).embed(["note 7 about gardening tomatoes"])[0], "", 1
        )
        assert dense[0]["id"] == ids["note7"] and dense[0]["_distance"] < 1e-5
        # The row of a conversation is embedded with its speaker and neighbours, as on add.
        row = mem.storage.vectors.get(ids["walks"])
        assert row is not None and row["name"] == "Ann" and row["context"] and row["neighbours"]
        expected = embed_inputs([EmbedInput.of_row(row)], embedder(B).embed, "mixed")
        stored = mem.storage.vectors.query(f"id = '{ids['walks']}'", columns=("id", "vector"))[0]["vector"]
        assert np.allclose(stored, expected[0], atol=1e-6)
        indexes = {idx.name for idx in mem.storage.vectors.table.list_indices()}
        assert {"search_text_idx", "id_idx", "user_id_idx"} <= indexes
        assert "memories_reindex" not in mem.storage.vectors.table_names()
        # And the store takes new writes with the new model.
        added = mem.add("Pixel also likes frisbee", user_id="u").results[0]
        assert mem.search("frisbee", user_id="u").results[0].id == added.id
    finally:
        mem.close()


def test_same_model_does_nothing_unless_forced(store: tuple[Settings, dict[str, str]]) -> None:
    settings, ids = store
    same = embedder(A)
    result = rx.reindex(settings, embedder=same)
    assert not result.done and same.calls == 0 and "nothing to do" in result.message
    forced = rx.reindex(settings, embedder=same, force=True, batch_size=100)
    assert forced.done and forced.rows == 24 and same.calls == 1
    mem = Memory(settings, embedder=embedder(A))
    assert mem.search("greyhound", user_id="u").results[0].id == ids["pixel"]
    mem.close()


def test_empty_data_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(rx.EmptyStoreError, match="no memories"):
        rx.reindex(make_settings(tmp_path / "nothing"), embedder=embedder(B))


@pytest.mark.parametrize("good_batches", [0, 3])
def test_failure_midway_leaves_the_old_store(
    store: tuple[Settings, dict[str, str]], good_batches: int
) -> None:
    settings, ids = store
    mem = Memory(settings, embedder=embedder(A))
    before = snapshot(mem)
    mem.close()
    meta_before = (settings.data_dir / "store.json").read_text()

    failing = FailingEmbedder(good_batches, dimension=B[1], name=B[0])
    with pytest.raises(StoreError, match=r"model crashed.*nothing was changed") as err:
        rx.reindex(settings, embedder=failing)
    assert f"after {4 * good_batches} of 24" in str(err.value)

    assert (settings.data_dir / "store.json").read_text() == meta_before
    mem = Memory(settings, embedder=embedder(A))
    try:
        assert snapshot(mem) == before
        assert mem.search("greyhound Pixel", user_id="u").results[0].id == ids["pixel"]
        assert mem.storage.vectors.dimension == 64
        assert "memories_reindex" not in mem.storage.vectors.table_names()
    finally:
        mem.close()
    with pytest.raises(EmbedderMismatchError):
        Memory(settings, embedder=embedder(B))
    # A later run succeeds.
    assert rx.reindex(settings, embedder=embedder(B)).rows == 24


def test_failed_swap_restores_the_old_store(
    store: tuple[Settings, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, ids = store
    meta_before = (settings.data_dir / "store.json").read_text()
    real = rx._connect

    def connect(s: Settings) -> object:
        db = real(s)
        create = db.create_table

        def create_table(name: str, *args: object, **kwargs: object) -> object:
            if name == "memories":
                raise OSError("disk full")
            return create(name, *args, **kwargs)

        db.create_table = create_table
        return db

    monkeypatch.setattr(rx, "_connect", connect)
    with pytest.raises(StoreError, match=r"disk full.*nothing was changed"):
        rx.reindex(settings, embedder=embedder(B))
    assert (settings.data_dir / "store.json").read_text() == meta_before
    mem = Memory(settings, embedder=embedder(A))
    assert mem.search("greyhound", user_id="u").results[0].id == ids["pixel"]
    mem.close()


def test_interrupted_swap_blocks_the_engine_until_rerun(store: tuple[Settings, dict[str, str]]) -> None:
    settings, ids = store
    # What store.json says when a run died between the swap and its last step.
    meta = {
        "embedder_model": f"{rx.IN_PROGRESS}model-a -> model-b",
        "dimension": 32,
        "reindex_from": "model-a",
        "reindex_to": "model-b",
    }
    (settings.data_dir / "store.json").write_text(json.dumps(meta))
    for model in (A, B):
        with pytest.raises(EmbedderMismatchError, match="mem0-mcp reindex"):
            Memory(settings, embedder=embedder(model))
    assert rx.inspect_store(settings).interrupted
    result = rx.reindex(settings, embedder=embedder(A))  # the same name as before: still re-embeds
    assert result.done and result.rows == 24 and result.old_model == "model-a"
    mem = Memory(settings, embedder=embedder(A))
    assert mem.search("greyhound", user_id="u").results[0].id == ids["pixel"]
    mem.close()


def test_reindex_waits_for_the_write_lock(store: tuple[Settings, dict[str, str]]) -> None:
    settings, _ = store
    lock = WriteLock(settings.data_dir / "write.lock")
    finished: list[float] = []
    with lock.hold():
        worker = threading.Thread(
            target=lambda: (rx.reindex(settings, embedder=embedder(B)), finished.append(time.monotonic()))
        )
        worker.start()
        time.sleep(0.5)
        released = time.monotonic()
        assert not finished
    worker.join(timeout=60)
    assert finished and finished[0] >= released


# ---------------------------------------------------------------- the command


@pytest.fixture
def cli_env(store: tuple[Settings, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings, _ = store
    for key in list(os.environ):
        if key.startswith("MEM0_MCP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MEM0_MCP_EMBEDDER_MODEL", "model-b")
    monkeypatch.setenv("MEM0_MCP_LLM_PROVIDER", "none")
    monkeypatch.setenv("MEM0_MCP_EMBEDDING_BATCH_SIZE", "4")
    # The command logs to the stderr it finds; pytest's capture of it closes after the test.
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    # The command builds the configured embedder; here, the fake one of that name.
    monkeypatch.setattr(rx, "build_embedder", lambda s: FakeEmbedder(dimension=32, name=s.embedder_model))
    return settings


def test_cli_reindex(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["reindex", "--yes", "--batch-size", "5"]) == 0
    out, err = capsys.readouterr()
    assert "reindexed 24 memories in" in out and "model-a (64-d) -> model-b (32-d)" in out
    assert "reindex: 24/24 memories (100%)" in err and "restart servers" in err
    mem = Memory(cli_env, embedder=embedder(B))
    assert mem.stats().memories == 24
    mem.close()
    # Again: same model, nothing to do.
    assert cli.main(["reindex", "--yes"]) == 0
    assert "nothing to do" in capsys.readouterr().err


def test_cli_reindex_needs_confirmation(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    # stdin is not a terminal under pytest: without --yes the command refuses and changes nothing.
    assert cli.main(["reindex"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert json.loads((cli_env.data_dir / "store.json").read_text())["embedder_model"] == "model-a"


def test_cli_reindex_empty_dir(
    cli_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(tmp_path / "empty"))
    assert cli.main(["reindex", "--yes"]) == 2
    assert "no memories" in capsys.readouterr().err


def test_cli_reindex_failure_exits_1(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(rx, "build_embedder", lambda s: FailingEmbedder(2, dimension=32, name="model-b"))
    assert cli.main(["reindex", "--yes"]) == 1
    assert "nothing was changed" in capsys.readouterr().err
    mem = Memory(cli_env, embedder=embedder(A))
    assert mem.stats().memories == 24
    mem.close()


@pytest.mark.parametrize("argv", [["reindex", "--batch-size", "0"], ["reindex", "--batch-size", "x"]])
def test_cli_reindex_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and "--batch-size" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["reindex", "--batch-size", "7", "--yes", "--force"])
    assert (args.command, args.batch_size, args.yes, args.force) == ("reindex", 7, True, True)
