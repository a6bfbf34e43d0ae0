"""An int8 shadow of the in-process copy's vectors: which rows can be in an exact top k, found
without reading every float32 vector.

At 10k x 384 the exact scan reads 15 MB: 0.55 ms from cache, ~1.3 ms right after the ONNX
embedder ran (it evicts the matrix), so an add's `related` lookup and a search's dense part pay
it after each embedding. The int8 rows are a quarter of that, and onnxruntime's integer product
(MLAS) reads them in ~0.2 ms. Each row's int8 score is within a bound of its float32 score, so the
rows within twice the bound of the k-th best int8 score hold the exact top k; only they are
scored in float32, by the same einsum as the full scan (a row's dot product does not depend on the
other rows: the same bits), and the hits and scores stay what the full scan gives.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
from typing import Any, NamedTuple

import numpy as np

from mem0_mcp.stores.int8_frozen import FREEZE_MAX, FREEZE_MIN, REFREEZE_SHARE, Frozen, frozen

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


# The graph, opset 13, serialized once with onnx.helper (tests/test_int8_rows.py rebuilds it and
# compares; importing onnx costs ~0.5 s, which the first search would pay):
#   approx = MatMulInteger(rows: uint8 [n, d], query: int8 [d, 1], zero: 128) * scale (s_x s_q)
#            + penalty (0, or -inf for a row outside the scope)
#   near = NonZero(approx >= min(TopK(approx, k)) - window)
# One call: the bound's arithmetic over every row ran in numpy before (~0.1 ms of a 0.4 ms lookup).
# The query's scale is multiplied in numpy: a second Mul (by a scalar input) cost ~90 us here.
MODEL = base64.b64decode(
    "CAgSCG1lbTAtbWNwOqUECigKBHJvd3MKBXF1ZXJ5CgR6ZXJvEgRkb3RzIg1NYXRNdWxJbnRlZ2VyCh4KBGRvdHMSBWV4"
    "YWN0IgRDYXN0KgkKAnRvGAGgAQIKGwoFZXhhY3QKBXNjYWxlEgZzY2FsZWQiA011bAoeCgZzY2FsZWQKB3BlbmFsdHkS"
    "BmNvbHVtbiIDQWRkCh8KBmNvbHVtbgoEZmxhdBIGYXBwcm94IgdSZXNoYXBlCiAKBmFwcHJveAoBaxIEYmVzdBIHYmVz"
    "dF9hdCIEVG9wSwonCgRiZXN0EgNrdGgiCVJlZHVjZU1pbioPCghrZWVwZGltcxgAoAECChkKA2t0aAoGd2luZG93EgVm"
    "bG9vciIDU3ViCiUKBmFwcHJveAoFZmxvb3ISBGtlZXAiDkdyZWF0ZXJPckVxdWFsChUKBGtlZXASBG5lYXIiB05vblpl"
    "cm8SCWludDhfcm93cyoWCAEQBzoK////////////AUIEZmxhdFoYCgRyb3dzEhAKDggCEgoKAxIBbgoDEgFkWhgKBXF1"
    "ZXJ5Eg8KDQgDEgkKAxIBZAoCCAFaDgoEemVybxIGCgQIAhIAWhgKBXNjYWxlEg8KDQgBEgkKAxIBbgoCCAFaGgoHcGVu"
    "YWx0eRIPCg0IARIJCgMSAW4KAggBWg8KAWsSCgoICAcSBAoCCAFaEAoGd2luZG93EgYKBAgBEgBiFwoEbmVhchIPCg0I"
    "BxIJCgIIAQoDEgFtQgQKABAN"
)


def _product() -> Any:
    """onnxruntime's session of MODEL, one thread; None when onnxruntime cannot run it (the full
    scan serves then)."""
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


class Quantized(NamedTuple):
    """Rows as int8 codes c (as float64) with a float32 scale s each, so that x ~ s c."""

    codes: np.ndarray
    scale: np.ndarray  # float32
    error: np.ndarray  # |x - s c|, exactly (with the float32 s)
    coded: np.ndarray  # |s c|
    norm: np.ndarray  # |x|


def quantized(vectors: np.ndarray) -> Quantized:
    v = np.asarray(vectors, dtype=np.float64)
    scale = (np.abs(v).max(axis=1) / 127.0 if v.shape[1] else np.zeros(len(v))).astype(np.float32)
    wide = scale.astype(np.float64)
    codes = np.clip(np.rint(v / np.where(wide > 0, wide, 1.0)[:, None]), -127, 127)
    error = np.sqrt(np.square(v - wide[:, None] * codes).sum(axis=1))
    coded = wide * np.sqrt(np.square(codes).sum(axis=1))
    return Quantized(codes, scale, error, coded, np.sqrt(np.square(v).sum(axis=1)))


class Int8Rows:
    """Row ``i`` quantized as the copy's matrix row ``i``; the copy writes both under its lock.

    Bound of row x against query q (x ~ s_x c_x, q ~ s_q c_q, errors e_x = |x - s_x c_x|, e_q):
    q.x - s_q s_x c_q.c_x = q.(x - s_x c_x) + s_x c_x.(q - s_q c_q), so it is within
    |q| e_x + |s_x c_x| e_q; plus the float32 einsum's own rounding. With the largest e_x, |s_x c_x|
    and |x| of the rows written, one bound b serves every row: each row of the exact top k (and
    each row tied with its k-th) has approx >= (the k-th largest approx) - 2 b."""

    def __init__(self, limit: int = 2**62) -> None:
        self.limit = limit  # rows past which it is dropped, and the full scan serves
        self._codes = np.zeros((0, 0), dtype=np.uint8)
        self._scale = np.zeros((0, 1), dtype=np.float32)
        self._everywhere = np.zeros((0, 1), dtype=np.float32)  # the penalty of a whole-copy scope
        # Largest |x - s c|, |s c| and |x| of any row written: rows only ever loosen them (an
        # update keeps the old row's), a reload starts a new shadow.
        self._error = self._coded = self._norm = 0.0
        self._exact_only = False  # a row not finite: its bound means nothing
        # The last row written alone, as (its float32 bytes, its quantization): an add stages its
        # row, then looks up what is related to the same vector.
        self._last: tuple[bytes, Quantized] | None = None
        # Rows 0.. held by a session as constant weights (int8_frozen.py), made in a background
        # thread from the rows as they were when it started; installed only if none of them was
        # written since (``_rewrites`` counts such writes).
        self._frozen: Frozen | None = None
        self._written = 0  # rows 0.. written so far: a write below it rewrites rows
        self._rewrites = 0
        self._freezing = False
        self._freeze_failed = False
        self._freeze_lock = threading.Lock()

    def write(self, start: int, vectors: np.ndarray, cap: int) -> None:
        """Rows ``start``.. are now ``vectors`` (the matrix holds ``cap`` rows)."""
        end = start + len(vectors)
        dim = vectors.shape[1]
        if start < self._written or self._codes.shape[1:] != (dim,):
            with self._freeze_lock:
                self._rewrites += 1
                self._frozen = None
        self._written = max(self._written, end)
        if cap > self.limit or self._exact_only:
            self._exact_only = True  # 389 bytes a row (at 384 dimensions) that no search reads
            self._codes, self._scale = np.zeros((0, 0), dtype=np.uint8), np.zeros((0, 1), dtype=np.float32)
            self._everywhere = self._scale
            return
        if self._codes.shape != (cap, dim):
            keep = min(start, len(self._codes)) if self._codes.shape[1:] == (dim,) else 0
            codes = np.full((cap, dim), 128, dtype=np.uint8)
            scale = np.zeros((cap, 1), dtype=np.float32)
            if keep:
                codes[:keep] = self._codes[:keep]
                scale[:keep] = self._scale[:keep]
            self._codes, self._scale = codes, scale
            self._everywhere = np.zeros((cap, 1), dtype=np.float32)
        if not np.isfinite(vectors).all():
            self._exact_only = True
            return
        # In chunks: a copy loaded at 1M rows would otherwise hold float64 temporaries of 3 GB.
        for at in range(start, end, CHUNK):
            part = quantized(vectors[at - start : at - start + CHUNK])
            self._last = (vectors[0].tobytes(), part) if len(vectors) == 1 else None
            upto = at + len(part.codes)
            self._codes[at:upto] = part.codes + 128
            self._scale[at:upto, 0] = part.scale
            if len(part.codes):
                self._error = max(self._error, float(part.error.max()))
                self._coded = max(self._coded, float(part.coded.max()))
                self._norm = max(self._norm, float(part.norm.max()))
        rows, held = min(self._written, FREEZE_MAX), self.frozen_rows
        due = rows >= FREEZE_MIN and (rows - held) * REFREEZE_SHARE >= rows
        if due and not self._freezing and not self._freeze_failed:
            self._freezing = True
            threading.Thread(target=self.freeze, args=(rows,), name="mem0-int8-freeze", daemon=True).start()

    def freeze(self, rows: int) -> bool:
        """Hold rows 0..``rows`` in a session as constant weights (see int8_frozen.py); False when
        one of them was written meanwhile (the rows stay read as an input). Runs in a thread of
        its own; tests call it directly."""
        try:
            with self._freeze_lock:
                stamp, codes = self._rewrites, self._codes
            if self._exact_only or len(codes) < rows:
                return False
            made = frozen(codes[:rows])
            with self._freeze_lock:
                if self._rewrites != stamp or self._exact_only:
                    return False
                self._frozen = made
                return True
        except Exception as exc:  # the rows are still read as an input, and not frozen again
            logger.warning("int8 rows cannot be frozen (%s): each lookup reads them as an input", exc)
            self._freeze_failed = True
            return False
        finally:
            self._freezing = False

    @property
    def frozen_rows(self) -> int:
        """Rows held as constant weights (0: none)."""
        held = self._frozen
        return held.rows if held is not None else 0

    def serves(self, n: int) -> bool:
        """Whether it holds the first ``n`` rows (candidates can be had for them)."""
        return not self._exact_only and len(self._codes) >= n

    def candidates(self, q: np.ndarray, idx: np.ndarray, k: int, n: int) -> np.ndarray | None:
        """Positions among ``idx`` (ascending, rows < ``n``) that hold every row of the exact
        top ``k`` of ``idx`` by the float32 einsum, and every row tied with its k-th; None when
        the full scan is as cheap or the bound cannot be had."""
        if not self.serves(n) or k >= len(idx) or not math.isfinite(float(q.sum())):
            return None
        session = _product()
        if session is None:
            return None
        last = self._last
        query = last[1] if last is not None and last[0] == q.tobytes() else quantized(q[None, :])
        dim = len(q)
        qnorm, qcoded = float(query.norm[0]), float(query.coded[0])
        bound = qnorm * self._error + float(query.error[0]) * self._coded
        bound += FLOAT_SLACK * dim * (self._norm + 1e-3) * qnorm
        # The graph's float32 products, TopK and subtraction round too: room for that.
        window = 2.0 * bound + 2.0**-20 * (qcoded * self._coded + 1.0)
        if len(idx) == n:
            penalty = self._everywhere[:n]
        else:
            penalty = np.full((n, 1), -np.inf, dtype=np.float32)
            penalty[idx] = 0.0
        feed = {
            "query": query.codes.T.astype(np.int8),
            "zero": np.array(128, dtype=np.uint8),
            "scale": self._scale[:n] * query.scale[0],
            "penalty": penalty,
            "k": np.array([k], dtype=np.int64),
            "window": np.array(window, dtype=np.float32),
        }
        held = self._frozen
        if held is not None and held.rows <= n:
            session = held.session
            feed["query_u8"] = (query.codes + 128).astype(np.uint8)
            feed["tail"] = self._codes[held.rows : n]
            feed["scale"] = feed["scale"].reshape(-1)
            feed["penalty"] = penalty.reshape(-1)
        else:
            feed["rows"] = self._codes[:n]
        near = session.run(None, feed)[0][0]
        if len(near) > MAX_SHARE * len(idx):
            return None
        return near
