"""Int8 rows frozen into an onnxruntime session as constant weights, for `Int8Rows.candidates`.

The product of one query with every row is the int8 lookup's cost. With the rows an input of the
graph, MLAS takes them as the left matrix of a product with one column: it packs them on each
call and each vector instruction does one column's work of sixteen. Held as a constant right
matrix, they are packed once when the session is made, and the same product reads them at full
width: at 10k x 384 in an add (right after its embedding) the candidate graph runs 0.67 ms
instead of 0.87, the product 0.24 ms of it. Making the session costs ~20 ms at 10k rows, so it is
made in the background for the rows held then, and the rows appended after it are read as an
input, the old way, beside it.

The graph gives the candidate graph of `int8_rows.MODEL` the same numbers: the integer products
are exact either way, and the float steps after them are the same operators in the same order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

# Rows packed at once: past this share of rows appended after the frozen ones, they are frozen
# again (at 10k, ~20 ms of a background thread every 1,250 adds: ~16 us an add).
REFREEZE_SHARE = 8
# Fewer rows than this are read as an input (a session made for them would not pay).
FREEZE_MIN = 4096
# Rows past this are read as an input: a frozen row costs 2.2x its codes again (the weights and
# onnxruntime's packed copy: +84 MB at 100k rows, measured), so at most ~110 MB. Making the
# session at 100k takes 0.23 s in the background, holding the GIL at most ~6 ms at a time.
FREEZE_MAX = 2**17


class Frozen(NamedTuple):
    """Rows 0..``rows`` held by ``session``; ``weights`` is the buffer it reads them from (kept
    alive with it: onnxruntime does not copy an initializer given as an OrtValue)."""

    rows: int
    session: Any
    weights: np.ndarray


def weights_of(codes: np.ndarray) -> np.ndarray:
    """The product's right matrix (dimension x rows, int8 c) of rows of codes c + 128 (uint8).

    In blocks of rows: a transposing copy of them all at once reads and writes across the whole
    array a byte at a time (100k x 384: 1.3 s, in blocks 0.05 s)."""
    out = np.empty((codes.shape[1], len(codes)), dtype=np.int8)
    for at in range(0, len(codes), 4096):
        out[:, at : at + 4096] = (codes[at : at + 4096] ^ 0x80).view(np.int8).T  # c + 128 -> c
    return out


def selection(helper: Any) -> list[Any]:
    """The nodes that keep the rows of ``approx`` within ``window`` of its ``k``-th best, as
    ``near``: the rule of both candidate graphs (this one, and int8_rows.MODEL, which the tests
    rebuild with it). ``helper`` is onnx.helper (imported by the caller: ~0.5 s)."""
    return [
        helper.make_node("TopK", ["approx", "k"], ["best", "best_at"]),
        helper.make_node("ReduceMin", ["best"], ["kth"], keepdims=0),
        helper.make_node("Sub", ["kth", "window"], ["floor"]),
        helper.make_node("GreaterOrEqual", ["approx", "floor"], ["keep"]),
        helper.make_node("NonZero", ["keep"], ["near"]),
    ]


def frozen(codes: np.ndarray) -> Frozen:
    """A session of the candidate graph whose first ``len(codes)`` rows are held as constant
    weights; the rows after them come as the input ``tail``.

    Inputs: ``query_u8`` (1 x d, the query's codes + 128), ``query`` (d x 1, its codes), ``zero``
    (128), ``tail`` (t x d uint8, codes + 128), ``scale`` and ``penalty`` (n), ``k``, ``window``;
    output ``near`` (1 x m) as the candidate graph's. Raises what onnx and onnxruntime raise.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper

    weights = weights_of(codes)
    dim = weights.shape[0]
    # The weights are handed to onnxruntime in memory: a placeholder in the graph names them
    # (serializing 4 MB at 10k rows into the graph held the GIL ~20 ms).
    held = TensorProto(name="rows_t", data_type=TensorProto.INT8, dims=weights.shape)
    held.data_location = TensorProto.EXTERNAL
    held.external_data.add(key="location", value="rows_t.bin")
    flat = helper.make_tensor("flat", TensorProto.INT64, [1], [-1])
    nodes = [
        # A's zero point 128 takes the query's codes back from uint8: the product is c_q . c_x.
        helper.make_node("MatMulInteger", ["query_u8", "rows_t", "zero"], ["held"]),
        helper.make_node("MatMulInteger", ["tail", "query", "zero"], ["later"]),
        helper.make_node("Reshape", ["held", "flat"], ["held_flat"]),
        helper.make_node("Reshape", ["later", "flat"], ["later_flat"]),
        helper.make_node("Concat", ["held_flat", "later_flat"], ["dots"], axis=0),
        helper.make_node("Cast", ["dots"], ["exact"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["exact", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "penalty"], ["approx"]),
        *selection(helper),
    ]
    graph = helper.make_graph(
        nodes,
        "int8_rows_frozen",
        [
            helper.make_tensor_value_info("query_u8", TensorProto.UINT8, [1, dim]),
            helper.make_tensor_value_info("query", TensorProto.INT8, [dim, 1]),
            helper.make_tensor_value_info("zero", TensorProto.UINT8, []),
            helper.make_tensor_value_info("tail", TensorProto.UINT8, ["t", dim]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("penalty", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("window", TensorProto.FLOAT, []),
        ],
        [helper.make_tensor_value_info("near", TensorProto.INT64, [1, "m"])],
        initializer=[held, flat],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_external_initializers(["rows_t"], [ort.OrtValue.ortvalue_from_numpy(weights)])
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return Frozen(len(codes), session, weights)
