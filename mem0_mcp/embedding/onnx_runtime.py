"""ONNX Runtime embedder: sentence-transformers vectors without importing torch at run time.

A sentence-transformers folder is exported once (torch + transformers, a few seconds) into
``<models_dir>/<slug>/``; every later start only loads ``model.onnx`` and ``tokenizer.json``
with onnxruntime and tokenizers (about 0.1 s of imports instead of about 4 s for torch).
Tokenization, pooling and normalization are done here in numpy, so the exported graph is just
the transformer, and an export is accepted only if its vectors match sentence-transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mem0_mcp.embedding.base import normalize, resolve_model_path
from mem0_mcp.errors import ConfigError

if TYPE_CHECKING:
    from mem0_mcp.config import Settings

logger = logging.getLogger(__name__)

# Bump when the layout or the meaning of the exported files changes: older caches are re-exported.
FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
POOLING_FILE = "pooling.json"
MANIFEST_FILE = "manifest.json"
MIN_COSINE = 0.9999
# Opset 17 is old enough for any onnxruntime this package accepts (>= 1.18) and has every op BERT-style
# encoders need, including LayerNormalization.
OPSET = 17
SUPPORTED_POOLING = ("mean", "cls", "max", "mean_sqrt_len_tokens")
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# How long a second process waits for another one's export before exporting itself.
_LOCK_WAIT_SECONDS = 600.0
# Tokens per inference call (rows x padded width). Large batches of long texts run slower per
# token: their activations fall out of cache (1,000 LoCoMo turns: 95/s in chunks of 64 rows,
# 113/s in chunks of ~1,024 tokens).
CHUNK_TOKENS = 1024
# From this many chunks in one call, chunks run in parallel on single-threaded sessions (one per
# thread) instead of one after another on the multi-threaded one: small matrix products spread
# badly over threads (1,000 turns: 130/s instead of 113/s). Each extra session holds ~100 MB, so
# they are made on the first batch that large, not for queries.
PARALLEL_MIN_CHUNKS = 4

# Covers what matters at export time: truncation past max_seq_length, padding within a batch,
# the empty string, accents and non-Latin scripts, and a query-sized sentence.
VERIFY_SENTENCES = (
    "I love hiking in the mountains.",
    "What did I tell you about my sister's birthday?",
    "",
    "Café, naïve résumé — déjà vu. 東京で寿司を食べた。",
    "The user prefers dark mode and vim keybindings. " * 60,
    "ok",
)


class OnnxUnavailableError(ConfigError):
    """This model cannot be served by the ONNX backend; 'auto' falls back to sentence-transformers."""


def model_slug(model: str) -> str:
    """A folder name that is safe on every filesystem and unique per model string."""
    tail = "/".join(model.replace("\\", "/").rstrip("/").split("/")[-2:])
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", tail).strip("._-")[:60] or "model"
    digest = hashlib.sha256(model.encode()).hexdigest()[:10]
    return f"{readable}-{digest}"


def resolve_source_folder(model: str) -> Path:
    """The local sentence-transformers folder behind a model setting (bundled alias, path or hub name)."""
    path = Path(resolve_model_path(model)).expanduser()
    if path.is_dir():
        return path.resolve()
    # A hub name can still be served offline from the Hugging Face cache.
    candidates = [model] if "/" in model else [model, f"sentence-transformers/{model}"]
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise OnnxUnavailableError(f"embedder_model: {model!r} is not a local folder") from exc
    for repo_id in candidates:
        try:
            return Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # not cached, or not a valid repo id: try the next spelling
            continue
    raise OnnxUnavailableError(
        f"embedder_model: {model!r} is neither a local folder nor in the Hugging Face cache; "
        "the ONNX backend exports from local files only"
    )


def source_fingerprint(folder: Path) -> dict[str, list[int]]:
    """relative path -> [size, mtime_ns] of every file, so a replaced or upgraded model is noticed.

    Sizes and mtimes instead of hashes: hashing ~90 MB of weights would cost more than the
    whole cached load this module exists to make fast.
    """
    out: dict[str, list[int]] = {}
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            full = Path(root) / name
            try:
                st = full.stat()
            except OSError:
                continue
            out[full.relative_to(folder).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _default_threads() -> int:
    # One thread per core, at most 4: a single query is too small to spread over more, and on the
    # small shared boxes this runs on, extra threads mostly fight other processes for the cores.
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


class OnnxEmbedder:
    """Serves an exported folder (see :func:`ensure_exported`) with onnxruntime and tokenizers."""

    def __init__(
        self,
        folder: str | Path,
        *,
        name: str | None = None,
        batch_size: int = 64,
        threads: int = 0,
    ) -> None:
        from tokenizers import Tokenizer

        t0 = time.perf_counter()
        self.folder = Path(folder)
        try:
            cfg = json.loads((self.folder / POOLING_FILE).read_text())
            self._pooling: str = cfg["pooling_mode"]
            self._dimension: int = int(cfg["dimension"])
            self._max_length: int = int(cfg["max_seq_length"])
            self._pad_id: int = int(cfg["pad_token_id"])
            self._input_names: list[str] = list(cfg["input_names"])
            self._output_name: str = cfg["output_name"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OnnxUnavailableError(
                f"{self.folder / POOLING_FILE}: unreadable export config: {exc}"
            ) from exc
        if self._pooling not in SUPPORTED_POOLING:
            raise OnnxUnavailableError(f"{self.folder}: unsupported pooling mode {self._pooling!r}")
        self._name = name or str(cfg.get("model") or self.folder.name)
        self._batch_size = max(1, int(batch_size))

        tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
        # Padding is done per length-sorted chunk below, so the tokenizer must not pad on its own.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self._max_length)
        self._tokenizer = tokenizer

        self.threads = threads if threads > 0 else _default_threads()
        self._session = self._new_session(self.threads)
        # Single-threaded sessions for large batches, made on first use (see PARALLEL_MIN_CHUNKS).
        self._idle_sessions: queue.SimpleQueue[Any] | None = None
        self._pool: Any = None
        self._parallel_init = threading.Lock()
        graph_inputs = {i.name for i in self._session.get_inputs()}
        if graph_inputs != set(self._input_names):
            raise OnnxUnavailableError(
                f"{self.folder / MODEL_FILE}: graph inputs {sorted(graph_inputs)} do not match the "
                f"export config {sorted(self._input_names)}"
            )
        self.load_seconds = time.perf_counter() - t0
        # Set by from_settings: how long the one-time export took in this process (None: cached).
        self.export_seconds: float | None = None

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
        return ort.InferenceSession(
            str(self.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def _parallel(self) -> tuple[queue.SimpleQueue[Any], Any]:
        with self._parallel_init:
            if self._idle_sessions is None:
                from concurrent.futures import ThreadPoolExecutor

                idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
                for _ in range(self.threads):
                    idle.put(self._new_session(1))
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mem0-embed")
                self._idle_sessions = idle
            return self._idle_sessions, self._pool

    @classmethod
    def from_settings(cls, settings: Settings) -> OnnxEmbedder:
        export_t0 = time.perf_counter()
        folder, exported = ensure_exported(settings.embedder_model, settings.models_dir)
        export_seconds = time.perf_counter() - export_t0 if exported else None
        embedder = cls(
            folder,
            name=settings.embedder_model,
            batch_size=settings.embedding_batch_size,
            threads=settings.embedder_threads,
        )
        embedder.export_seconds = export_seconds
        return embedder

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return self._max_length

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        if n == 0:
            return np.zeros((0, self._dimension), dtype=np.float32)
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
        out = np.empty((n, self._dimension), dtype=np.float32)
        if len(chunks) >= PARALLEL_MIN_CHUNKS and self.threads > 1:
            idle, pool = self._parallel()

            def run(rows: np.ndarray, width: int) -> None:
                session = idle.get()
                try:
                    out[rows] = self._embed_chunk([encodings[i] for i in rows], width, session)
                finally:
                    idle.put(session)

            for future in [pool.submit(run, rows, width) for rows, width in chunks]:
                future.result()
        else:
            for rows, width in chunks:
                out[rows] = self._embed_chunk([encodings[i] for i in rows], width)
        return normalize(out)

    def _embed_chunk(self, encodings: list[Any], width: int, session: Any = None) -> np.ndarray:
        size = len(encodings)
        ids = np.full((size, width), self._pad_id, dtype=np.int64)
        mask = np.zeros((size, width), dtype=np.int64)
        types = np.zeros((size, width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            k = len(enc.ids)
            ids[row, :k] = enc.ids
            mask[row, :k] = enc.attention_mask
            types[row, :k] = enc.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feed = {name: arrays[name] for name in self._input_names}
        hidden = np.asarray((session or self._session).run([self._output_name], feed)[0], dtype=np.float32)
        return _pool(hidden, mask, self._pooling)


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """The pooling of sentence-transformers' Pooling module, for right-padded batches."""
    if mode == "cls":
        return hidden[:, 0]
    weights = mask.astype(np.float32)[:, :, None]
    if mode == "max":
        return np.where(weights > 0, hidden, -np.inf).max(axis=1)
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    if mode == "mean_sqrt_len_tokens":
        return summed / np.sqrt(counts)
    return summed / counts


# --------------------------------------------------------------------------- cache and export


def ensure_exported(model: str, models_dir: Path, *, in_subprocess: bool = True) -> tuple[Path, bool]:
    """The folder holding a valid export of ``model``, exporting it first if needed.

    Returns (folder, exported_now). Safe for concurrent processes: exports are serialized by a
    lock file where the platform has one, and always land by renaming a finished temp folder.
    ``in_subprocess`` keeps torch out of this (long-lived) process: importing it and loading the
    model there would hold ~450 MB more memory until the server restarts.
    """
    source = resolve_source_folder(model)
    models_dir = Path(models_dir)
    target = models_dir / model_slug(model)
    fingerprint = source_fingerprint(source)
    reason = cache_problem(target, source, fingerprint)
    if reason is None:
        logger.debug("ONNX export of %s found in %s", model, target)
        return target, False
    precheck_folder(source)
    refused = models_dir / f"{target.name}.refused.json"
    _raise_if_refused_before(refused, source, fingerprint)
    models_dir.mkdir(parents=True, exist_ok=True)
    with _export_lock(models_dir / f".{target.name}.lock"):
        # Another process may have finished the export while this one waited for the lock.
        reason = cache_problem(target, source, fingerprint)
        if reason is None:
            return target, False
        _raise_if_refused_before(refused, source, fingerprint)
        logger.info("exporting %s to ONNX in %s (%s); this happens once", model, target, reason)
        _remove_leftovers(models_dir, target.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=models_dir))
        try:
            try:
                if in_subprocess:
                    manifest = _export_in_subprocess(source, tmp, model=model)
                else:
                    manifest = export_model(source, tmp, model=model)
            except OnnxUnavailableError as exc:
                # The same files would be refused again; remembering it spares every later start
                # the seconds of loading torch just to fall back to sentence-transformers.
                _write_json(
                    refused,
                    {
                        "format_version": FORMAT_VERSION,
                        "source_path": str(source),
                        "source_files": fingerprint,
                        "environment": _export_environment(),
                        "reason": str(exc),
                    },
                )
                raise
            manifest["source_files"] = fingerprint
            _write_json(tmp / MANIFEST_FILE, manifest)
            _install(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info(
        "ONNX export of %s done in %.1fs (min cosine vs sentence-transformers %.6f)",
        model,
        manifest["export_seconds"],
        manifest["verification"]["min_cosine"],
    )
    return target, True


# Exit status of the export child when the model is refused (as opposed to crashing).
_EXIT_REFUSED = 3


def _export_in_subprocess(source: Path, out_dir: Path, *, model: str | None) -> dict[str, Any]:
    """Run :func:`export_model` in a child interpreter and return its manifest."""
    import subprocess
    import sys

    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    # The child must import this same package even when the parent found it through a sys.path
    # tweak (tests, embedding applications) rather than an installation.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "mem0_mcp.embedding.onnx_runtime", str(source), str(out_dir)]
    if model is not None:
        cmd += ["--model", model]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as exc:
        # No usable interpreter (a frozen application, say): export here, paying the memory.
        logger.info("ONNX export subprocess unavailable (%s); exporting in this process", exc)
        return export_model(source, out_dir, model=model)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        manifest = json.loads(lines[-1])
        if isinstance(manifest, dict):
            return manifest
    detail = (lines[-1] if lines else "") or proc.stderr.strip()[-2000:] or f"exit status {proc.returncode}"
    if proc.returncode == _EXIT_REFUSED:
        raise OnnxUnavailableError(detail)
    raise RuntimeError(f"ONNX export of {source} failed: {detail}")


def _export_environment() -> dict[str, str | None]:
    """Installed versions of what an export depends on, read without importing any of it."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("torch", "transformers", "sentence-transformers", "onnxruntime", "tokenizers", "onnx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _raise_if_refused_before(marker: Path, source: Path, fingerprint: dict[str, list[int]]) -> None:
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return
    # A refusal may come from the installed packages rather than the model (say, an exporter that
    # needs ``onnx``), so upgrading any of them earns another try.
    if (
        isinstance(data, dict)
        and data.get("format_version") == FORMAT_VERSION
        and data.get("source_path") == str(source)
        and data.get("source_files") == fingerprint
        and data.get("environment") == _export_environment()
    ):
        raise OnnxUnavailableError(f"{data.get('reason')} (remembered in {marker}; delete it to retry)")


def cache_problem(target: Path, source: Path, fingerprint: dict[str, list[int]]) -> str | None:
    """Why the cached export in ``target`` cannot be used, or None when it can."""
    try:
        manifest = json.loads((target / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        return "no cached export"
    except (OSError, ValueError) as exc:
        return f"unreadable manifest: {exc}"
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        return "export format changed"
    if manifest.get("source_path") != str(source):
        return f"source moved from {manifest.get('source_path')}"
    if manifest.get("source_files") != fingerprint:
        return "source model files changed"
    for fname, meta in (manifest.get("files") or {}).items():
        try:
            if (target / fname).stat().st_size != meta.get("size"):
                return f"{fname} has the wrong size"
        except OSError:
            return f"{fname} is missing"
    return None


@contextlib.contextmanager
def _export_lock(path: Path) -> Iterator[None]:
    """Lets one process export while the others wait; the kernel drops the lock if it dies."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps the cache consistent
        yield
        return
    with path.open("a") as fh:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        waited = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    logger.warning("%s still locked after %.0fs; exporting anyway", path, _LOCK_WAIT_SECONDS)
                    yield
                    return
                if not waited:
                    logger.info("waiting for another process to finish the ONNX export (%s)", path)
                    waited = True
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_leftovers(models_dir: Path, slug: str) -> None:
    # Called under the lock, so any temp or retired folder of this slug belongs to a dead process.
    for pattern in (f".{slug}.tmp-*", f".{slug}.old-*"):
        for leftover in models_dir.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _install(tmp: Path, target: Path) -> None:
    """Move a finished export into place; readers see the old folder or the new one, never a mix."""
    retired: Path | None = None
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        with contextlib.suppress(FileNotFoundError):
            target.rename(retired)
    try:
        tmp.rename(target)
    except OSError:
        # Only possible without the lock (Windows, or a lock that timed out): someone else won.
        if not (target / MANIFEST_FILE).exists():
            raise
        logger.info("another process installed %s first; keeping its export", target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def precheck_folder(source: Path) -> None:
    """Refuse, from the config files alone, pipelines the export would refuse after loading torch.

    Only what is certain is refused here; anything unusual is left to the export, which decides
    on the loaded model and checks its vectors anyway.
    """
    try:
        modules = json.loads((source / "modules.json").read_text())
    except (OSError, ValueError):
        return  # a plain transformers folder: sentence-transformers adds mean pooling itself
    if not isinstance(modules, list):
        return
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)]
    extra = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if extra:
        raise OnnxUnavailableError(
            f"embedder_model {source}: modules {extra} are not supported by the ONNX backend "
            "(only Transformer, Pooling, Normalize); use embedder='sentence-transformers'"
        )
    for module in modules:
        if not (isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling")):
            continue
        try:
            cfg = json.loads((source / str(module.get("path", "")) / "config.json").read_text())
        except (OSError, ValueError):
            return
        if not isinstance(cfg, dict):
            return
        mode = cfg.get("pooling_mode")
        if mode is None:
            flagged = [name for key, name in _POOLING_FLAGS.items() if cfg.get(key)]
            mode = flagged[0] if len(flagged) == 1 else flagged or None
        if isinstance(mode, list) and len(mode) == 1:
            mode = mode[0]
        if mode is not None and mode not in SUPPORTED_POOLING:
            raise OnnxUnavailableError(
                f"embedder_model {source}: pooling {mode!r} is not supported by the ONNX backend "
                f"(supported: {', '.join(SUPPORTED_POOLING)}); use embedder='sentence-transformers'"
            )


def _inspect_pipeline(st_model: Any, source: Path) -> dict[str, Any]:
    """What the ONNX side needs to reproduce the pipeline, or a clear refusal."""
    modules = list(st_model)
    kinds = [type(m).__name__ for m in modules]
    if len(modules) < 2 or kinds[0] != "Transformer" or kinds[1] != "Pooling":
        raise OnnxUnavailableError(
            f"embedder_model {source}: pipeline {kinds} is not Transformer + Pooling [+ Normalize]; "
            "use embedder='sentence-transformers'"
        )
    if any(k != "Normalize" for k in kinds[2:]):
        raise OnnxUnavailableError(
            f"embedder_model {source}: modules after pooling {kinds[2:]} are not supported by the ONNX "
            "backend (only Normalize is); use embedder='sentence-transformers'"
        )
    if getattr(st_model, "default_prompt_name", None):
        raise OnnxUnavailableError(
            f"embedder_model {source}: a default prompt ({st_model.default_prompt_name!r}) is not supported "
            "by the ONNX backend; use embedder='sentence-transformers'"
        )
    pooling = modules[1]
    mode: Any = getattr(pooling, "pooling_mode", None)
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):  # sentence-transformers < 6
        mode = pooling.get_pooling_mode_str()
    if isinstance(mode, (list, tuple)) and len(mode) == 1:
        mode = mode[0]
    if mode not in SUPPORTED_POOLING:
        raise OnnxUnavailableError(
            f"embedder_model {source}: pooling {mode!r} is not supported by the ONNX backend "
            f"(supported: {', '.join(SUPPORTED_POOLING)}); use embedder='sentence-transformers'"
        )
    transformer = modules[0]
    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise OnnxUnavailableError(
            f"embedder_model {source}: the ONNX backend needs a fast (tokenizers) tokenizer; "
            "use embedder='sentence-transformers'"
        )
    if getattr(tokenizer, "padding_side", "right") != "right":
        raise OnnxUnavailableError(f"embedder_model {source}: left-padding tokenizers are not supported")
    import inspect

    auto_model = transformer.auto_model
    params = set(inspect.signature(auto_model.forward).parameters)
    wanted = set(getattr(tokenizer, "model_input_names", _KNOWN_INPUTS))
    input_names = [n for n in _KNOWN_INPUTS if n in params and n in wanted]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        raise OnnxUnavailableError(
            f"embedder_model {source}: {type(auto_model).__name__} does not take input_ids and attention_mask"
        )
    max_len = getattr(st_model, "max_seq_length", None) or getattr(tokenizer, "model_max_length", None)
    if not isinstance(max_len, int) or max_len <= 0 or max_len > 100_000:
        raise OnnxUnavailableError(f"embedder_model {source}: no usable max_seq_length ({max_len!r})")
    get_dim = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    return {
        "pooling_mode": mode,
        "max_seq_length": int(max_len),
        "dimension": int(get_dim()),
        "pad_token_id": int(tokenizer.pad_token_id or 0),
        "input_names": input_names,
        "output_name": "token_embeddings",
    }


def export_model(source: Path, out_dir: Path, *, model: str | None = None) -> dict[str, Any]:
    """Export the transformer of a sentence-transformers folder to ``out_dir`` and verify it.

    Imports torch (seconds); the returned manifest lacks only ``source_files``.
    """
    t0 = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import sentence_transformers
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise OnnxUnavailableError(f"ONNX export needs torch and sentence-transformers: {exc}") from exc

    st_model: Any = SentenceTransformer(str(source), device="cpu")
    st_model.eval()
    spec = _inspect_pipeline(st_model, source)
    auto_model: Any = st_model[0].auto_model
    input_names: list[str] = spec["input_names"]

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = auto_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            out = self.inner(**dict(zip(input_names, inputs, strict=True)), return_dict=True)
            hidden = getattr(out, "last_hidden_state", None)
            return hidden if hidden is not None else out[0]

    # A padded example, so attention masking is traced as a computation and not folded away.
    example = st_model[0].tokenizer(
        ["An example sentence to trace the encoder with.", "Short."], padding=True, return_tensors="pt"
    )
    examples = {
        n: example[n] if n in example else torch.zeros_like(example["input_ids"]) for n in input_names
    }
    args = tuple(examples[n] for n in input_names)
    axes = {n: {0: "batch", 1: "sequence"} for n in input_names}
    axes[spec["output_name"]] = {0: "batch", 1: "sequence"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # dynamo=False: the TorchScript exporter needs `onnx` but not onnxscript.
            torch.onnx.export(
                _Encoder().eval(),
                args,
                str(out_dir / MODEL_FILE),
                input_names=input_names,
                output_names=[spec["output_name"]],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:
        raise OnnxUnavailableError(
            f"embedder_model {source}: torch could not export {type(auto_model).__name__} to ONNX: {exc}"
        ) from exc

    # Take the tokenizer as sentence-transformers configured it (e.g. do_lower_case is applied to
    # its normalizer), not the raw tokenizer.json of the folder, whose truncation may differ.
    backend = Tokenizer.from_str(st_model[0].tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(max_length=spec["max_seq_length"])
    backend.save(str(out_dir / TOKENIZER_FILE))
    _write_json(out_dir / POOLING_FILE, {"model": model, **spec})

    verification = _verify(st_model, out_dir, spec)
    files = {
        fname: {"size": (out_dir / fname).stat().st_size, "sha256": _sha256(out_dir / fname)}
        for fname in (MODEL_FILE, TOKENIZER_FILE, POOLING_FILE)
    }
    import onnxruntime
    import tokenizers

    return {
        "format_version": FORMAT_VERSION,
        "model": model,
        "source_path": str(source),
        "dimension": spec["dimension"],
        "pooling_mode": spec["pooling_mode"],
        "max_seq_length": spec["max_seq_length"],
        "files": files,
        "verification": verification,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "onnxruntime": onnxruntime.__version__,
            "tokenizers": tokenizers.__version__,
            "opset": OPSET,
        },
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "export_seconds": round(time.perf_counter() - t0, 3),
    }


def _verify(st_model: Any, out_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Reject the export unless the whole ONNX path (tokenizer included) reproduces the reference."""
    texts = list(VERIFY_SENTENCES)
    reference = np.asarray(
        st_model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ),
        dtype=np.float32,
    )
    # A batch of 2 forces both padding and more than one chunk through the ONNX path.
    onnx_model = OnnxEmbedder(out_dir, batch_size=2, threads=1)
    if onnx_model.dimension != reference.shape[1]:
        raise OnnxUnavailableError(
            f"ONNX export: dimension {onnx_model.dimension} != sentence-transformers {reference.shape[1]}"
        )
    batched = onnx_model.embed(texts)
    singles = np.vstack([onnx_model.embed([t]) for t in texts])
    cos_batch = np.sum(batched * reference, axis=1)
    cos_single = np.sum(singles * reference, axis=1)
    worst = float(min(cos_batch.min(), cos_single.min()))
    if not worst >= MIN_COSINE:
        raise OnnxUnavailableError(
            f"ONNX export rejected: cosine to sentence-transformers is {worst:.6f} (< {MIN_COSINE}); "
            "use embedder='sentence-transformers'"
        )
    return {"min_cosine": round(worst, 7), "sentences": len(texts), "threshold": MIN_COSINE}


def _main(argv: list[str] | None = None) -> int:
    """Child side of :func:`_export_in_subprocess`: the manifest (or the refusal) as the last stdout line."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m mem0_mcp.embedding.onnx_runtime")
    ap.add_argument("source", type=Path, help="sentence-transformers folder")
    ap.add_argument("out_dir", type=Path, help="existing, empty folder to write the export into")
    ap.add_argument("--model", default=None, help="model setting, recorded in the export")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        manifest = export_model(args.source, args.out_dir, model=args.model)
    except OnnxUnavailableError as exc:
        sys.stdout.write(str(exc).replace("\n", " ") + "\n")
        return _EXIT_REFUSED
    sys.stdout.write(json.dumps(manifest) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
