"""``store.json``: what a data dir records about its vectors (the model and the dimension).

The one reader and writer of that file, for the engine and for reindex.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from mem0_mcp.errors import StoreError

STORE_META = "store.json"


def meta_path(data_dir: Path) -> Path:
    return data_dir / STORE_META


def read_meta(data_dir: Path) -> dict[str, Any]:
    """The recorded fields ({} when nothing is recorded yet).

    Raises StoreError naming the file and the fix when it is not a JSON object.
    """
    path = meta_path(data_dir)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path} is corrupt ({exc}); {_FIX}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"{path} holds {type(value).__name__}, not a JSON object; {_FIX}")
    return value


def write_meta(data_dir: Path, meta: dict[str, Any] | None) -> None:
    """Replace the file atomically; None removes it (the next write records the embedder anew)."""
    path = meta_path(data_dir)
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
