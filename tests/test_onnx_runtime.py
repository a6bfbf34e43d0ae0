"""The ONNX runtime on a tiny export built here (no torch, milliseconds): sessions, chunks, pooling.

The export folder is what :mod:`mem0_mcp.embedding.onnx_export` writes, with a made-up model: a
word-level tokenizer and a graph that looks each token up in a small embedding table.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
onnx = pytest.importorskip("onnx")

from mem0_mcp.embedding.onnx_runtime import OnnxEmbedder, pool  # noqa: E402

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
DIM = 8


def write_tiny_export(folder: Path) -> Path:
    """An export folder (model.onnx, tokenizer.json, pooling.json) of a lookup-table 'transformer'."""
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder.mkdir(parents=True)
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))

    table = np.random.default_rng(7).standard_normal((len(vocab), DIM)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["looked_up"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last_axis"], ["mask_3d"]),
        helper.make_node("Mul", ["looked_up", "mask_3d"], ["token_embeddings"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("token_embeddings", TensorProto.FLOAT, ["batch", "sequence", DIM])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "pooling.json").write_text(
        json.dumps(
            {
                "model": "tiny",
                "pooling_mode": "mean",
                "dimension": DIM,
                "max_seq_length": 16,
                "pad_token_id": 0,
                "input_names": ["input_ids", "attention_mask"],
                "output_name": "token_embeddings",
            }
        )
    )
    return folder


def texts(n: int) -> list[str]:
    return [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(1 + i % 5)) for i in range(n)]


def test_large_batch_works_after_the_model_file_is_gone(tmp_path: Path) -> None:
    """Issue #12 item 7: parallel sessions opened lazily from a deleted ``model.onnx`` failed."""
    folder = write_tiny_export(tmp_path / "export")
    batch = texts(12)
    expected = OnnxEmbedder(folder, batch_size=1, threads=1).embed(batch)
    # One row per chunk: 12 chunks, enough for the parallel single-threaded sessions.
    embedder = OnnxEmbedder(folder, batch_size=1, threads=2)
    assert embedder.embed(["alpha"]).shape == (1, DIM)  # a query: no parallel sessions yet
    shutil.rmtree(folder)
    np.testing.assert_allclose(embedder.embed(batch), expected, atol=1e-6)


def test_parallel_and_serial_paths_agree_and_keep_input_order(tmp_path: Path) -> None:
    folder = write_tiny_export(tmp_path / "export")
    batch = texts(30)
    serial = OnnxEmbedder(folder, batch_size=4, threads=1).embed(batch)
    parallel = OnnxEmbedder(folder, batch_size=4, threads=2).embed(batch)
    singles = np.vstack([OnnxEmbedder(folder, threads=1).embed([t]) for t in batch[:5]])
    np.testing.assert_allclose(parallel, serial, atol=1e-6)
    np.testing.assert_allclose(serial[:5], singles, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(parallel, axis=1), 1.0, atol=1e-5)


def test_mean_pooling_ignores_padding(tmp_path: Path) -> None:
    folder = write_tiny_export(tmp_path / "export")
    embedder = OnnxEmbedder(folder, threads=1)
    alone = embedder.embed(["alpha beta"])
    # Batched with a longer text, "alpha beta" is padded; the padding must not move its vector.
    padded = embedder.embed(["alpha beta", "alpha beta gamma delta epsilon"])[0]
    np.testing.assert_allclose(padded, alone[0], atol=1e-6)
    assert embedder.embed([]).shape == (0, DIM)


@pytest.mark.parametrize("mode", ["mean", "mean_sqrt_len_tokens"])
def test_an_unpadded_batch_pools_to_the_bits_of_the_padded_one(mode: str) -> None:
    """Without padding, pooling skips the weights (all 1.0): the vectors are, bit for bit, those of
    the same rows with a padded token after them."""
    rng = np.random.default_rng(1)
    for rows, tokens in ((1, 1), (1, 41), (3, 7), (2, 256)):
        hidden = (3.0 * rng.standard_normal((rows, tokens, 16))).astype(np.float32)
        junk = rng.standard_normal((rows, 1, 16)).astype(np.float32)
        mask = np.ones((rows, tokens), dtype=np.int64)
        padded = pool(np.concatenate([hidden, junk], axis=1), np.pad(mask, ((0, 0), (0, 1))), mode)
        assert np.array_equal(pool(hidden, mask, mode), padded)
