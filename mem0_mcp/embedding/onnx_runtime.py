"""ONNX Runtime embedder: sentence-transformers vectors without importing torch at run time.

Serves a folder made once by :mod:`mem0_mcp.embedding.onnx_export` (kept by
:mod:`mem0_mcp.embedding.onnx_cache`): only ``model.onnx`` and ``tokenizer.json`` are loaded,
with onnxruntime and tokenizers (about 0.1 s of imports instead of about 4 s for torch).
Tokenization, pooling and normalization are done here in numpy, so the graph is just the
transformer.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mem0_mcp.embedding.base import normalize
from mem0_mcp.embedding.onnx_format import MODEL_FILE, TOKENIZER_FILE, OnnxUnavailableError, read_spec

# Tokens per inference call (rows x padded width). Large batches of long texts run slower per
# token: their activations fall out of cache (1,000 LoCoMo turns: 95/s in chunks of 64 rows,
# 113/s in chunks of ~1,024 tokens).
CHUNK_TOKENS = 1024
# From this many chunks in one call, chunks run in parallel on single-threaded sessions (one per
# thread) instead of one after another on the multi-threaded one: small matrix products spread
# badly over threads (1,000 turns: 130/s instead of 113/s). Each extra session holds ~100 MB, so
# they are made on the first batch that large, not for queries.
PARALLEL_MIN_CHUNKS = 4


def default_threads() -> int:
    """One thread per core, at most 4.

    A single query is too small to spread over more, and on the small shared boxes this runs
    on, extra threads mostly fight other processes for the cores.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """The pooling of sentence-transformers' Pooling module, for right-padded batches.

    Takes token vectors (batch, sequence, dim) and the attention mask (batch, sequence); returns
    one vector per row (batch, dim), not normalized.
    """
    if mode == "cls":
        return hidden[:, 0]
    if mode != "max" and mask.all():
        # No padding (a single text, or texts of one length): the weights are all 1.0, and
        # multiplying by them changes no bit; ~0.05 ms of a single text's ~7 ms, skipped.
        summed = hidden.sum(axis=1)
        counts = np.full((len(hidden), 1), hidden.shape[1], dtype=np.float32)
    else:
        weights = mask.astype(np.float32)[:, :, None]
        if mode == "max":
            return np.where(weights > 0, hidden, -np.inf).max(axis=1)
        summed = (hidden * weights).sum(axis=1)
        counts = np.maximum(weights.sum(axis=1), 1e-9)
    if mode == "mean_sqrt_len_tokens":
        return summed / np.sqrt(counts)
    return summed / counts


class OnnxEmbedder:
    """Serves an export folder with onnxruntime and tokenizers.

    Every session is made from what ``__init__`` read: with more than one thread, the model's
    bytes, so the single-threaded sessions opened later for a large batch never reopen a file
    that may have been deleted (a temporary data dir) or replaced (a re-export) since.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        name: str | None = None,
        batch_size: int = 64,
        threads: int = 0,
        export_seconds: float | None = None,
    ) -> None:
        """Load the tokenizer and the main session of ``folder``.

        ``threads`` 0 means :func:`default_threads`; ``export_seconds`` records how long the
        export took in this process (None: it was cached). Raises :class:`OnnxUnavailableError`
        when the folder is not a usable export, and onnxruntime's errors for a broken graph.
        """
        from tokenizers import Tokenizer

        t0 = time.perf_counter()
        self.folder = Path(folder)
        self._spec, model = read_spec(self.folder)
        self._name = name or model or self.folder.name
        self._batch_size = max(1, int(batch_size))

        tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
        # Padding is done per length-sorted chunk below, so the tokenizer must not pad on its own.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self._spec["max_seq_length"])
        self._tokenizer = tokenizer

        self.threads = threads if threads > 0 else default_threads()
        # One thread never runs chunks in parallel, so the path is enough (and onnxruntime keeps
        # no copy of the bytes). Measured on all-MiniLM-L6-v2 with 2 threads: holding the bytes
        # costs 86 MB once; opening the parallel sessions eagerly instead would cost ~100 MB and
        # ~0.15 s per session at every start, for servers that mostly embed single queries.
        model_file = self.folder / MODEL_FILE
        self._model: str | bytes = model_file.read_bytes() if self.threads > 1 else str(model_file)
        self._session = self._new_session(self.threads)
        # Single-threaded sessions for large batches, made on first use (see PARALLEL_MIN_CHUNKS).
        self._idle_sessions: queue.SimpleQueue[Any] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._parallel_init = threading.Lock()
        graph_inputs = {i.name for i in self._session.get_inputs()}
        if graph_inputs != set(self._spec["input_names"]):
            raise OnnxUnavailableError(
                f"{model_file}: graph inputs {sorted(graph_inputs)} do not match the "
                f"export config {sorted(self._spec['input_names'])}"
            )
        self.load_seconds = time.perf_counter() - t0
        self.export_seconds = export_seconds

    def _new_session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Workers spin between the ~100 small operators of one call (waking a sleeping thread
        # for each cost ~1.4 ms of a 7.5 ms query here) and stop spinning as soon as the call
        # returns, so an idle server burns no CPU (measured: the same CPU per call as without).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.log_severity_level = 3
        return ort.InferenceSession(self._model, options, providers=["CPUExecutionProvider"])

    def _parallel(self) -> tuple[queue.SimpleQueue[Any], ThreadPoolExecutor]:
        with self._parallel_init:
            if self._idle_sessions is None or self._pool is None:
                idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
                for _ in range(self.threads):
                    idle.put(self._new_session(1))
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mem0-embed")
                self._idle_sessions = idle
            return self._idle_sessions, self._pool

    @property
    def name(self) -> str:
        """The model setting this export serves (or the folder name)."""
        return self._name

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._spec["dimension"]

    @property
    def max_seq_length(self) -> int:
        """Tokens per text; longer texts are truncated."""
        return self._spec["max_seq_length"]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``: shape (len(texts), dimension), float32, each of unit length.

        Texts are sorted by length into chunks of about :data:`CHUNK_TOKENS` tokens; the result
        keeps the input order.
        """
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch([str(t) for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        # Longest first, so each chunk pads to a length close to its own rows and the largest
        # (slowest) chunk shows up first if memory is going to be a problem.
        order = np.argsort(-lengths, kind="stable")
        chunks: list[tuple[np.ndarray, int]] = []
        start = 0
        while start < n:
            width = int(lengths[order[start]])
            size = max(1, min(self._batch_size, CHUNK_TOKENS // max(width, 1)))
            chunks.append((order[start : start + size], width))
            start += size
        out = np.empty((n, self.dimension), dtype=np.float32)
        if len(chunks) >= PARALLEL_MIN_CHUNKS and self.threads > 1:
            idle, executor = self._parallel()

            def run(rows: np.ndarray, width: int) -> None:
                session = idle.get()
                try:
                    out[rows] = self._embed_chunk([encodings[i] for i in rows], width, session)
                finally:
                    idle.put(session)

            for future in [executor.submit(run, rows, width) for rows, width in chunks]:
                future.result()
        else:
            for rows, width in chunks:
                out[rows] = self._embed_chunk([encodings[i] for i in rows], width, self._session)
        return normalize(out)

    def _embed_chunk(self, encodings: list[Any], width: int, session: Any) -> np.ndarray:
        size = len(encodings)
        ids = np.full((size, width), self._spec["pad_token_id"], dtype=np.int64)
        mask = np.zeros((size, width), dtype=np.int64)
        types = np.zeros((size, width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            k = len(enc.ids)
            ids[row, :k] = enc.ids
            mask[row, :k] = enc.attention_mask
            types[row, :k] = enc.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feed = {name: arrays[name] for name in self._spec["input_names"]}
        output = session.run([self._spec["output_name"]], feed)[0]
        return pool(np.asarray(output, dtype=np.float32), mask, self._spec["pooling_mode"])
