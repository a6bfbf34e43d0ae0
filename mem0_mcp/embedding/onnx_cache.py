"""Where ONNX exports live and when one may be used: slug per model, manifest checks, one exporter.

``<models_dir>/<slug>/`` holds one export per model setting. An export is used only while its
manifest matches the source folder (path, file sizes and mtimes) and its files are whole; it is
written once, by one process at a time (a lock file), into a temp folder renamed into place, so
readers see the old export or the new one, never a mix. A model the export refused is remembered
(``<slug>.refused.json``) until its files or the export's packages change.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from mem0_mcp.embedding.base import resolve_model_path
from mem0_mcp.embedding.onnx_export import export_model, precheck_folder
from mem0_mcp.embedding.onnx_format import (
    EXIT_REFUSED,
    FORMAT_VERSION,
    MANIFEST_FILE,
    Manifest,
    OnnxUnavailableError,
    write_json,
)

logger = logging.getLogger(__name__)

# How long a second process waits for another one's export before exporting itself.
LOCK_WAIT_SECONDS = 600.0


class Exporter(Protocol):
    """Writes an export of ``source`` into the empty ``out_dir``; returns its manifest.

    The manifest may lack ``source_files`` (the cache adds them). Raises
    :class:`OnnxUnavailableError` when the model cannot be served by the ONNX backend.
    """

    def __call__(self, source: Path, out_dir: Path, *, model: str | None = None) -> Manifest: ...


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


def ensure_exported(model: str, models_dir: Path, *, export: Exporter | None = None) -> tuple[Path, bool]:
    """The folder holding a valid export of ``model``, exporting it first if needed.

    Returns (folder, exported_now). Safe for concurrent processes: exports are serialized by a
    lock file where the platform has one, and always land by renaming a finished temp folder.
    ``export`` runs in this process when given (tests); by default a child interpreter exports
    and installs (see :func:`_export_in_child`). Raises :class:`OnnxUnavailableError` when the model cannot
    be served (found, prechecked or remembered as refused, or refused by the export now).
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
    with _export_lock(models_dir / f".{target.name}.lock") as lock_fd:
        # Another process may have finished the export while this one waited for the lock.
        reason = cache_problem(target, source, fingerprint)
        if reason is None:
            return target, False
        _raise_if_refused_before(refused, source, fingerprint)
        logger.info("exporting %s to ONNX in %s (%s); this happens once", model, target, reason)
        if export is None:
            _export_in_child(model, models_dir, target, lock_fd)
            manifest = json.loads((target / MANIFEST_FILE).read_text())
        else:
            manifest = export_locked(model, models_dir, export)
    logger.info(
        "ONNX export of %s done in %.1fs (min cosine vs sentence-transformers %.6f)",
        model,
        manifest["export_seconds"],
        manifest["verification"]["min_cosine"],
    )
    return target, True


def export_locked(model: str, models_dir: Path, export: Exporter) -> Manifest:
    """Export ``model`` into ``models_dir`` for a caller holding its export lock; its manifest.

    Writes into a temp folder renamed into place, and remembers a refusal (raising
    :class:`OnnxUnavailableError`) so later starts skip the attempt.
    """
    source = resolve_source_folder(model)
    fingerprint = source_fingerprint(source)
    target = models_dir / model_slug(model)
    refused = models_dir / f"{target.name}.refused.json"
    _remove_leftovers(models_dir, target.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=models_dir))
    try:
        try:
            manifest = export(source, tmp, model=model)
        except OnnxUnavailableError as exc:
            # The same files would be refused again; remembering it spares every later start
            # the seconds of loading torch just to fall back to sentence-transformers.
            write_json(
                refused,
                {
                    "format_version": FORMAT_VERSION,
                    "source_path": str(source),
                    "source_files": fingerprint,
                    "environment": export_environment(),
                    "reason": str(exc),
                },
            )
            raise
        manifest["source_files"] = fingerprint
        write_json(tmp / MANIFEST_FILE, manifest)
        _install(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _export_in_child(model: str, models_dir: Path, target: Path, lock_fd: int | None) -> None:
    """Export in a child interpreter that outlives this process if it has to.

    torch stays out of this (long-lived) process: importing it and loading the model here would
    hold ~450 MB more until the server restarts. The child inherits the export lock and installs
    the export itself, in a session of its own and writing to a log file instead of a pipe, so a
    client that starts this server and quits before the export is done (a short-lived CLI call,
    a restart) does not lose it: the next start waits on the lock and finds the export done,
    instead of starting over. Raises :class:`OnnxUnavailableError` when the model was refused,
    RuntimeError when the child failed otherwise.
    """
    import subprocess
    import sys

    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    # The child must import this same package even when the parent found it through a sys.path
    # tweak (tests, embedding applications) rather than an installation.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    log_path = _export_log(models_dir, model)
    cmd = [sys.executable, "-m", "mem0_mcp.embedding.onnx_cache", model, str(models_dir)]
    try:
        with log_path.open("w") as log:
            child = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=() if lock_fd is None else (lock_fd,),
                start_new_session=True,
            )
    except OSError as exc:
        # No usable interpreter (a frozen application, say): export here, paying the memory.
        logger.info("ONNX export subprocess unavailable (%s); exporting in this process", exc)
        export_locked(model, models_dir, export_model)
        return
    status = child.wait()
    if status == 0:
        return
    try:
        detail = log_path.read_text(errors="replace").strip().splitlines()[-1]
    except (OSError, IndexError):
        detail = f"exit status {status}"
    if status == EXIT_REFUSED:
        raise OnnxUnavailableError(detail)
    raise RuntimeError(f"ONNX export of {model} failed: {detail} (log: {log_path})")


def export_environment() -> dict[str, str | None]:
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
        and data.get("environment") == export_environment()
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
def _export_lock(path: Path) -> Iterator[int | None]:
    """Lets one process export while the others wait; yields the locked file descriptor (None
    when not locked), which a child can inherit to keep the lock. The kernel drops the lock when
    every process holding the descriptor has exited."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps the cache consistent
        yield None
        return
    with path.open("a") as fh:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        waited = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    logger.warning("%s still locked after %.0fs; exporting anyway", path, LOCK_WAIT_SECONDS)
                    yield None
                    return
                if not waited:
                    logger.info("waiting for another process to finish the ONNX export (%s)", path)
                    waited = True
                time.sleep(0.2)
        try:
            yield fh.fileno()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _export_log(models_dir: Path, model: str) -> Path:
    """Where the export child writes its output (removed by the child when the export worked)."""
    return models_dir / f".{model_slug(model)}.export.log"


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


def main(argv: list[str] | None = None) -> int:
    """The export child (``python -m mem0_mcp.embedding.onnx_cache MODEL MODELS_DIR``), run
    holding its parent's export lock: exports and installs. Returns 0, :data:`EXIT_REFUSED`
    when the model is refused (the reason is the last line of the output), 1 on failure."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m mem0_mcp.embedding.onnx_cache")
    ap.add_argument("model", help="embedder_model setting")
    ap.add_argument("models_dir", type=Path, help="the export cache folder")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    try:
        export_locked(args.model, args.models_dir, export_model)
        # Kept only to explain a failure; an export that worked leaves nothing but itself.
        _export_log(args.models_dir, args.model).unlink(missing_ok=True)
    except OnnxUnavailableError as exc:
        print(str(exc).replace("\n", " "), flush=True)
        return EXIT_REFUSED
    except Exception as exc:
        logger.exception("ONNX export failed")
        print(f"{type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
