"""The int8 shadow of the in-process copy names candidates that hold the exact top k: searches
served through it return what a scan of every float32 vector returns."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEmbedder, make_settings

from mem0_mcp.engine.memory import Memory
from mem0_mcp.stores import int8_rows
from mem0_mcp.stores.int8_frozen import selection
from mem0_mcp.stores.int8_rows import Int8Rows


def exact_top(matrix: np.ndarray, q: np.ndarray, k: int) -> tuple[set[int], float]:
    sims = np.einsum("ij,j->i", matrix, q)
    kth = float(np.sort(sims)[-k])
    return {int(i) for i in np.flatnonzero(sims >= kth)}, kth


@pytest.mark.parametrize("dim", [3, 16, 384])
def test_candidates_hold_the_exact_top_k_and_its_ties(dim: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(int8_rows, "CHUNK", 333)  # writes of several chunks
    rng = np.random.default_rng(dim)
    centres = rng.standard_normal((20, dim))
    rows = centres[rng.integers(20, size=3000)] + 0.3 * rng.standard_normal((3000, dim))
    rows[::7] *= 3.0  # not unit length
    rows[5] = 0.0
    rows[10:14] = rows[9]  # exact ties
    matrix = rows.astype(np.float32)
    shadow = Int8Rows()
    shadow.write(0, matrix[:1000], 1024)
    shadow.write(1000, matrix[1000:], 3750)  # grows, keeping the rows written before
    idx = np.arange(3000)
    served = 0
    for t in range(40):
        q = (matrix[9] if t == 0 else matrix[rng.integers(3000)] + 0.1 * rng.standard_normal(dim)).astype(
            np.float32
        )
        for k in (1, 4, 80):
            near = shadow.candidates(q, idx, k, 3000)
            if near is None:
                continue
            served += 1
            top, _ = exact_top(matrix, q, k)
            assert top <= {int(i) for i in near}
            assert list(near) == sorted(near)
    assert served  # the bound is tight enough to serve
    scope = np.arange(0, 3000, 2)  # a part of the rows: candidates come from it alone
    near = shadow.candidates(matrix[4], scope, 4, 3000)
    assert near is None or set(near.tolist()) <= set(scope.tolist())


def test_a_query_equal_to_the_row_written_last_reads_as_any_other() -> None:
    """An add stages its row, then looks up what is related to the same vector: the row's
    quantization serves the query, and the candidates are those of a fresh one."""
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((500, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    one_by_one, at_once = Int8Rows(), Int8Rows()
    one_by_one.write(0, matrix[:499], 512)
    one_by_one.write(499, matrix[499:], 512)  # alone: its quantization is kept
    at_once.write(0, matrix, 512)
    idx = np.arange(500)
    for q in (matrix[499], matrix[499].copy(), matrix[3], -matrix[499]):
        a, b = one_by_one.candidates(q, idx, 4, 500), at_once.candidates(q, idx, 4, 500)
        assert a is not None and b is not None
        assert a.tolist() == b.tolist()
    one_by_one.write(0, matrix[:2], 512)  # a write of two rows keeps no quantization
    assert (
        one_by_one.candidates(matrix[499], idx, 4, 500).tolist()
        == at_once.candidates(  # type: ignore[union-attr]
            matrix[499], idx, 4, 500
        ).tolist()
    )


def test_a_row_that_is_not_finite_leaves_the_full_scan() -> None:
    shadow = Int8Rows()
    matrix = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    shadow.write(0, matrix, 128)
    assert shadow.candidates(matrix[0], np.arange(100), 3, 100) is not None
    shadow.write(50, np.full((1, 8), np.nan, dtype=np.float32), 128)
    assert shadow.candidates(matrix[0], np.arange(100), 3, 100) is None


def test_copy_searches_match_an_exact_scan_after_adds_and_updates(tmp_path: Path) -> None:
    emb = FakeEmbedder(dimension=48)
    mem = Memory(make_settings(tmp_path / "d"), embedder=emb)
    words = ["otter", "river", "heron", "stone", "bridge", "moss", "kayak", "lantern", "fern", "owl"]
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(words, 4)) + f" {i}" for i in range(600)]
    added = [e.id for e in mem.add([{"role": "user", "content": t} for t in texts], user_id="u").results]
    mem.update(added[3], text="otter otter lantern by the bridge")
    mem.flush()
    # The stored vectors (an add of several messages mixes each with its neighbours').
    table = mem.storage.vectors.table.to_arrow()
    ids = table.column("id").to_pylist()
    vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
    scope = {"user_id": "u", "agent_id": None, "run_id": None}
    for query in ["otter lantern", "heron moss kayak", "fern owl stone river", "bridge"]:
        q = emb.embed([query])[0]
        hits = mem.storage.vectors.dense_search(q, 5, scope, include_superseded=False, columns=("id",))
        assert hits is not None  # served by the copy
        top, kth = exact_top(vectors, q, 5)
        got = {ids.index(h["id"]) for h in hits}
        # Ties at the k-th score may go either way, as they do in the full scan.
        assert {i for i in top if float(np.einsum("j,j->", vectors[i], q)) > kth} <= got <= top
        distances = [h["_distance"] for h in hits]
        assert distances == sorted(distances)
    mem.close()


def test_the_serialized_graph_is_the_one_onnx_builds() -> None:
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("MatMulInteger", ["rows", "query", "zero"], ["dots"]),
        helper.make_node("Cast", ["dots"], ["exact"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["exact", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "penalty"], ["column"]),
        helper.make_node("Reshape", ["column", "flat"], ["approx"]),
        *selection(helper),
    ]
    graph = helper.make_graph(
        nodes,
        "int8_rows",
        [
            helper.make_tensor_value_info("rows", TensorProto.UINT8, ["n", "d"]),
            helper.make_tensor_value_info("query", TensorProto.INT8, ["d", 1]),
            helper.make_tensor_value_info("zero", TensorProto.UINT8, []),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["n", 1]),
            helper.make_tensor_value_info("penalty", TensorProto.FLOAT, ["n", 1]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("window", TensorProto.FLOAT, []),
        ],
        [helper.make_tensor_value_info("near", TensorProto.INT64, [1, "m"])],
        initializer=[helper.make_tensor("flat", TensorProto.INT64, [1], [-1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="mem0-mcp")
    model.ir_version = 8
    assert model.SerializeToString() == int8_rows.MODEL


def test_past_its_limit_the_shadow_is_dropped() -> None:
    matrix = np.random.default_rng(3).standard_normal((100, 8)).astype(np.float32)
    shadow = Int8Rows(limit=120)
    shadow.write(0, matrix[:90], 112)
    assert shadow.candidates(matrix[0], np.arange(90), 3, 90) is not None
    shadow.write(90, matrix[90:], 125)  # grows past the limit
    assert shadow.candidates(matrix[0], np.arange(100), 3, 100) is None


def test_rows_frozen_as_weights_name_the_candidates_of_rows_read_as_an_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows held by a session as constant weights (and the rows appended after them, read as an
    input beside them) give every query the candidates the plain graph gives; a write to a
    frozen row drops the frozen session, and a freeze that raced with one is not installed."""
    monkeypatch.setattr(int8_rows, "FREEZE_MIN", 10**9)  # freezes only when asked, here
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((30, 64))
    matrix = (centres[rng.integers(30, size=6000)] + 0.4 * rng.standard_normal((6000, 64))).astype(np.float32)
    frozen, plain = Int8Rows(), Int8Rows()

    def same(n: int) -> None:
        for t in range(12):
            q = (matrix[rng.integers(n)] + 0.2 * rng.standard_normal(64)).astype(np.float32)
            idx = np.arange(n) if t % 3 else np.flatnonzero(rng.random(n) < 0.6)
            for k in (1, 5, 40):
                a, b = frozen.candidates(q, idx, k, n), plain.candidates(q, idx, k, n)
                assert (a is None) == (b is None)
                if a is not None and b is not None:
                    assert a.tolist() == b.tolist()

    for shadow in (frozen, plain):
        shadow.write(0, matrix[:5000], 8192)
    assert frozen.freeze(5000) and frozen.frozen_rows == 5000
    same(5000)
    for shadow in (frozen, plain):
        shadow.write(5000, matrix[5000:5700], 8192)  # read as an input beside the frozen rows
    assert frozen.frozen_rows == 5000
    same(5700)
    for shadow in (frozen, plain):
        shadow.write(17, matrix[5800:5801], 8192)  # a frozen row rewritten in place
    assert frozen.frozen_rows == 0
    same(5700)
    assert frozen.freeze(5700)
    same(5700)


def test_a_shadow_of_enough_rows_freezes_them_in_the_background() -> None:
    rng = np.random.default_rng(6)
    matrix = rng.standard_normal((int8_rows.FREEZE_MIN + 10, 32)).astype(np.float32)
    shadow = Int8Rows()
    shadow.write(0, matrix, len(matrix) + 100)
    deadline = time.monotonic() + 60
    while shadow.frozen_rows == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shadow.frozen_rows == len(matrix)
    assert shadow.candidates(matrix[3], np.arange(len(matrix)), 2, len(matrix)) is not None
    shadow.write(7, matrix[:1], len(matrix) + 100)  # a rewrite: all the rows are frozen again
    deadline = time.monotonic() + 60
    while shadow.frozen_rows == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shadow.frozen_rows == len(matrix)


def test_a_freeze_that_fails_leaves_the_rows_read_as_an_input_and_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def broken(codes: np.ndarray) -> None:
        calls.append(len(codes))
        raise RuntimeError("onnx cannot be imported")

    monkeypatch.setattr(int8_rows, "frozen", broken)
    monkeypatch.setattr(int8_rows, "FREEZE_MIN", 100)
    matrix = np.random.default_rng(7).standard_normal((400, 16)).astype(np.float32)
    shadow = Int8Rows()
    shadow.write(0, matrix[:200], 512)
    deadline = time.monotonic() + 30
    while "cannot be frozen" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "onnx cannot be imported" in caplog.text
    shadow.write(200, matrix[200:], 512)  # due again, but not tried again
    time.sleep(0.2)
    assert calls == [200] and shadow.frozen_rows == 0
    assert shadow.candidates(matrix[5], np.arange(400), 3, 400) is not None
