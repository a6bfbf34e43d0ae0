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

import base64
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
CHUNK = 4096  # rows quantized at a time

_session: Any = None
_session_lock = threading.Lock()
_unavailable = False


# The graph: dots[n, 1] = MatMulInteger(rows: uint8 [n, d], query: int8 [d, 1], zero: uint8 = 128),
# opset 13, serialized once with onnx.helper (tests/test_int8_rows.py rebuilds it and compares):
# importing onnx costs ~0.5 s, which the first search would pay.
MODEL = base64.b64decode(
    "CAgSCG1lbTAtbWNwOpIBCigKBHJvd3MKBXF1ZXJ5CgR6ZXJvEgRkb3RzIg1NYXRNdWxJbnRlZ2VyEglpbnQ4X3Jvd3Na"
    "GAoEcm93cxIQCg4IAhIKCgMSAW4KAxIBZFoYCgVxdWVyeRIPCg0IAxIJCgMSAWQKAggBWg4KBHplcm8SBgoECAISAGIX"
    "CgRkb3RzEg8KDQgGEgkKAxIBbgoCCAFCBAoAEA0="
)


def _product() -> Any:
    """onnxruntime's MatMulInteger (uint8 rows with zero point 128, int8 query), one thread; None
    when onnxruntime cannot run it (the full scan serves then)."""
    global _session, _unavailable
    with _session_lock:
        if _session is not None or _unavailable:
            return _session
        try:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            _session = ort.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # an exact scan of every row still answers
            logger.debug("int8 candidate scan unavailable (%s): searches scan every row", exc)
            _unavailable = True
        return _session


def _quantized(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows as int8 values (as float64), their scales and their norms."""
    v = np.asarray(vectors, dtype=np.float64)
    scale = np.abs(v).max(axis=1) / 127.0 if v.shape[1] else np.zeros(len(v))
    safe = np.where(scale > 0, scale, 1.0)
    return np.clip(np.rint(v / safe[:, None]), -127, 127), scale, np.sqrt((v * v).sum(axis=1))


class Int8Rows:
    """Row ``i`` quantized as the copy's matrix row ``i``; the copy writes both under its lock.

    Bound of row x against query q (d dimensions, scales s, codes c, |x - s c| <= sqrt(d) s / 2):
    |q.x - s_q s_x c_q.c_x| <= sqrt(d)/2 (s_q |x| + |s_q c_q| s_x), plus the float32 einsum's own
    rounding. Per row, ``_terms`` holds s_x, sqrt(d)/2 |x|, sqrt(d)/2 s_x and that rounding's
    factor, so a query costs a few vector operations beside the integer product."""

    def __init__(self, limit: int = 2**62) -> None:
        self.limit = limit  # rows past which it is dropped, and the full scan serves
        self._codes = np.zeros((0, 0), dtype=np.uint8)
        self._terms = np.zeros((4, 0))
        self._exact_only = False  # a row not finite: its bound means nothing

    def write(self, start: int, vectors: np.ndarray, cap: int) -> None:
        """Rows ``start``.. are now ``vectors`` (the matrix holds ``cap`` rows)."""
        end = start + len(vectors)
        dim = vectors.shape[1]
        if cap > self.limit or self._exact_only:
            self._exact_only = True  # 416 bytes a row (at 384 dimensions) that no search reads
            self._codes, self._terms = np.zeros((0, 0), dtype=np.uint8), np.zeros((4, 0))
            return
        if self._codes.shape != (cap, dim):
            keep = min(start, len(self._codes)) if self._codes.shape[1:] == (dim,) else 0
            codes = np.full((cap, dim), 128, dtype=np.uint8)
            terms = np.zeros((4, cap))
            if keep:
                codes[:keep] = self._codes[:keep]
                terms[:, :keep] = self._terms[:, :keep]
            self._codes, self._terms = codes, terms
        if not np.isfinite(vectors).all():
            self._exact_only = True
            return
        root = math.sqrt(dim) * 0.5001  # rounding to the nearest code, with room
        # In chunks: a copy loaded at 1M rows would otherwise hold float64 temporaries of 3 GB.
        for at in range(start, end, CHUNK):
            values, scale, norm = _quantized(vectors[at - start : at - start + CHUNK])
            upto = at + len(values)
            self._codes[at:upto] = values + 128
            self._terms[:, at:upto] = (scale, root * norm, root * scale, FLOAT_SLACK * dim * (norm + 1e-3))

    def candidates(self, q: np.ndarray, idx: np.ndarray, k: int, n: int) -> np.ndarray | None:
        """Positions among ``idx`` (ascending, rows < ``n``) that hold every row of the exact
        top ``k`` of ``idx`` by the float32 einsum, and every row tied with its k-th; None when
        the full scan is as cheap or the bound cannot be had."""
        if self._exact_only or k >= len(idx) or len(self._codes) < n or not np.isfinite(q).all():
            return None
        session = _product()
        if session is None:
            return None
        values, qscale, qnorm = _quantized(q[None, :])
        feed = {
            "rows": self._codes[:n],
            "query": values.T.astype(np.int8),
            "zero": np.array(128, dtype=np.uint8),
        }
        dots = session.run(None, feed)[0][:, 0]
        every = len(idx) == n  # then idx is 0..n-1: slices, no gathers
        terms = self._terms[:, :n] if every else self._terms[:, idx]
        if not every:
            dots = dots[idx]
        sq = float(qscale[0])
        qcoded = sq * math.sqrt(float(np.square(values).sum()))
        approx = dots * (terms[0] * sq)
        bound = sq * terms[1] + qcoded * terms[2] + float(qnorm[0]) * terms[3] + 1e-6
        low = approx - bound
        kth = np.partition(low, len(low) - k)[len(low) - k]
        near = np.flatnonzero(approx + bound >= kth)
        if len(near) > MAX_SHARE * len(idx):
            return None
        return idx[near]
