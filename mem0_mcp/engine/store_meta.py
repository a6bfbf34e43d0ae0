"""``store.json``: what a data dir records about its vectors (the model and the dimension).

The one reader and writer of that file, for the engine and for reindex. A store on object
storage (``store_uri``) keeps the same JSON object in the one-row Lance table ``store_meta``
beside its memory table, so every node checks its embedder against the same record.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from mem0_mcp.config import Settings
from mem0_mcp.errors import StoreError
from mem0_mcp.stores.object_store import RemoteStore, is_conflict, remote_store, retry_conflicts

STORE_META = "store.json"
META_TABLE = "store_meta"


def meta_path(data_dir: Path) -> Path:
    return data_dir / STORE_META


def _place(where: Settings | Path) -> Path | RemoteStore:
    if isinstance(where, Path):
        return where
    return remote_store(where) or where.data_dir


def read_meta(where: Settings | Path) -> dict[str, Any]:
    """The recorded fields ({} when nothing is recorded yet) of a data dir, or of the store
    settings name (its object store when ``store_uri`` is set, else its data dir).

    Raises StoreError naming the file and the fix when it is not a JSON object.
    """
    place = _place(where)
    if isinstance(place, RemoteStore):
        return _read_remote(place)
    path = meta_path(place)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path} is corrupt ({exc}); {_FIX}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"{path} holds {type(value).__name__}, not a JSON object; {_FIX}")
    return value


def write_meta(where: Settings | Path, meta: dict[str, Any] | None) -> None:
    """Replace the record atomically; None removes it (the next write records the embedder anew)."""
    place = _place(where)
    if isinstance(place, RemoteStore):
        _write_remote(place, meta)
        return
    path = meta_path(place)
    if meta is None:
        path.unlink(missing_ok=True)
        return
    # A name of its own per writer: threads and processes may write at once.
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(path)


_FIX = (
    'it should read {"embedder_model": "<model>", "dimension": <n>}: fix or delete it '
    "(the engine records the configured embedder again on the next write)"
)


def _read_remote(store: RemoteStore) -> dict[str, Any]:
    db = store.connect()
    try:
        rows = db.open_table(META_TABLE).search().limit(1).to_list()
    except (FileNotFoundError, ValueError):
        return {}
    except Exception as exc:
        raise StoreError(f"cannot read the store metadata of {store.shown}: {exc}") from exc
    if not rows:
        return {}
    try:
        value = json.loads(rows[0]["meta"])
    except ValueError as exc:
        raise StoreError(f"table {META_TABLE} of {store.shown} is corrupt ({exc}); {_FIX}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"table {META_TABLE} of {store.shown} holds no JSON object; {_FIX}")
    return value


def _write_remote(store: RemoteStore, meta: dict[str, Any] | None) -> None:
    import pyarrow as pa

    db = store.connect()
    try:
        if meta is None:
            db.drop_table(META_TABLE, ignore_missing=True)
            return
        data = pa.table({"meta": [json.dumps(meta)]})
        # One commit replaces the row: readers see the old record or the new one.
        retry_conflicts(lambda: _overwrite(store, db, data, meta), what="store metadata")
    except Exception as exc:
        raise StoreError(f"cannot write the store metadata of {store.shown}: {exc}") from exc


class _Raced(Exception):
    """An overwrite of ``store_meta`` lost a race with another node's (retryable)."""

    retryable = True

    def __str__(self) -> str:
        return "commit conflict: store_meta written concurrently (retryable)"


def _overwrite(store: RemoteStore, db: Any, data: Any, meta: dict[str, Any]) -> None:
    # The first adds of several nodes on a new store record the embedder at the same moment: the
    # overwrites race, and LanceDB fails the losers with a commit conflict or, creating the
    # table, a panic ("rust future panicked"). A loser whose record is what it meant to write is
    # done; otherwise it writes again.
    try:
        db.create_table(META_TABLE, data, mode="overwrite")
    except Exception as exc:
        try:
            if _read_remote(store) == meta:
                return
        except StoreError:
            pass
        if is_conflict(exc) or "panicked" in str(exc):
            raise _Raced() from exc
        raise
