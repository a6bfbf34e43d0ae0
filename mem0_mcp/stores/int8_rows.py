"""An int8 shadow of the in-process copy's vectors: which rows can be in an exact top k, found
without reading every float32 vector.

At 10k x 384 the exact scan reads 15 MB: 0.55 ms from cache, ~1.3 ms right after the ONNX
embedder ran (it evicts the matrix), so an add's `related` lookup and a search's dense part pay
it after each embedding. The int8 rows are a quarter of that, and onnxruntime's integer product
(MLAS) reads them in ~0.2 ms. Each row's int8 score is within a bound of its float32 score, so the
rows whose upper bound reaches the k-th best lower bound hold the exact top k; only they are
scored in float32, by the same einsum as the full scan (a row's dot product does not depend on the
other rows: the same bits), and the hits and scores stay what the full scan gives.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# Rounding of the float32 einsum the candidates are scored with, against the real dot product:
# at most d * 2**-24 * |q| * |x| (2.3e-5 at d=384); taken twice, per dimension.
FLOAT_SLACK = 2.0**-23
# Candidates past this share of the scope: the full scan reads no more and skips a gather.
MAX_SHARE = 0.5

_session: Any = None
_session_lock = threading.Lock()
_unavailable = False


def _product() -> Any:
    """onnxruntime's MatMulInteger (uint8 rows with zero point 128, int8 query), one thread; None
    when onnxruntime or onnx cannot provide it (the full scan serves then)."""
    global _session, _unavailable
    with _session_lock:
        if _session is not None or _unavailable:
            return _session
        try:
            import onnxruntime as ort
            from onnx import TensorProto, helper

            node = helper.make_node("MatMulInteger", ["rows", "query", "zero"], ["dots"])
            graph = helper.make_graph(
                [node],
                "int8_rows",
                [
                    helper.make_tensor_value_info("rows", TensorProto.UINT8, ["n", "d"]),
                    helper.make_tensor_value_info("query", TensorProto.INT8, ["d", 1]),
                    helper.make_tensor_value_info("zero", TensorProto.UINT8, []),
                ],
                [helper.make_tensor_value_info("dots", TensorProto.INT32, ["n", 1])],
            )
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
            model.ir_version = 8
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            _session = ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # an exact scan of every row still answers
            logger.debug("int8 candidate scan unavailable (%s): searches scan every row", exc)
            _unavailable = True
        return _session


def _quantized(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows as uint8 codes (value + 128), their scales and their norms."""
    v = np.asarray(vectors, dtype=np.float64)
    scale = np.abs(v).max(axis=1) / 127.0 if v.shape[1] else np.zeros(len(v))
    safe = np.where(scale > 0, scale, 1.0)
    codes = np.clip(np.rint(v / safe[:, None]), -127, 127) + 128
    return codes.astype(np.uint8), scale, np.sqrt((v * v).sum(axis=1))


class Int8Rows:
    """Row ``i`` quantized as the copy's matrix row ``i``; the copy writes both under its lock."""

    def __init__(self) -> None:
        self._codes = np.zeros((0, 0), dtype=np.uint8)
        self._scale = np.zeros(0)
        self._norm = np.zeros(0)
        self._exact_only = False  # a row not finite: its bound means nothing

    def write(self, start: int, vectors: np.ndarray, cap: int) -> None:
        """Rows ``start``.. are now ``vectors`` (the matrix holds ``cap`` rows)."""
        end = start + len(vectors)
        dim = vectors.shape[1]
        if self._codes.shape != (cap, dim):
            keep = min(start, len(self._codes)) if self._codes.shape[1:] == (dim,) else 0
            codes = np.full((cap, dim), 128, dtype=np.uint8)
            if keep:
                codes[:keep] = self._codes[:keep]
            self._codes = codes
            self._scale = np.concatenate([self._scale[:keep], np.zeros(cap - keep)])
            self._norm = np.concatenate([self._norm[:keep], np.zeros(cap - keep)])
        if not np.isfinite(vectors).all():
            self._exact_only = True
            return
        self._codes[start:end], self._scale[start:end], self._norm[start:end] = _quantized(vectors)

    def candidates(self, q: np.ndarray, idx: np.ndarray, k: int, n: int) -> np.ndarray | None:
        """Positions among ``idx`` (ascending, rows < ``n``) that hold every row of the exact
        top ``k`` of ``idx`` by the float32 einsum, and every row tied with its k-th; None when
        the full scan is as cheap or the bound cannot be had."""
        if self._exact_only or k >= len(idx) or len(self._codes) < n or not np.isfinite(q).all():
            return None
        session = _product()
        if session is None:
            return None
        qcodes, qscale, qnorm = _quantized(q[None, :])
        dots = session.run(
            None,
            {
                "rows": self._codes[:n],
                "query": (qcodes.astype(np.int16) - 128).astype(np.int8).T,
                "zero": np.array(128, dtype=np.uint8),
            },
        )[0][idx, 0]
        sq = float(qscale[0])
        scale, norm = self._scale[idx], self._norm[idx]
        approx = dots * (scale * sq)
        root = math.sqrt(q.shape[0]) * 0.5001  # rounding to the nearest code, with room
        qcoded = sq * math.sqrt(float(np.square(qcodes.astype(np.float64) - 128).sum()))
        slack = FLOAT_SLACK * q.shape[0] * float(qnorm[0]) * (norm + 1e-3) + 1e-6
        bound = root * (sq * norm + qcoded * scale) + slack
        low = approx - bound
        kth = np.partition(low, len(low) - k)[len(low) - k]
        near = np.flatnonzero(approx + bound >= kth)
        if len(near) > MAX_SHARE * len(idx):
            return None
        return idx[near]
