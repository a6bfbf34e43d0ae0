"""When the memory table's files are damaged: fall back to the newest readable version, name a
missing data file instead of leaking LanceDB's internals, and set unreadable manifests aside.

A Lance table is a folder: ``data/`` holds the rows, ``_versions/`` one manifest per version
(the newest wins). A truncated newest manifest makes LanceDB refuse to open the table at any
version, since it reads the newest first. The fallback opens a view of the table instead: a
temporary folder whose entries link to the real ones, with only the manifests up to the newest
readable version. The view is read-only by the engine's rule (writes are refused while it
serves): a commit there would land in the view, not in the data dir.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lancedb

from mem0_mcp.errors import StoreError

logger = logging.getLogger(__name__)

VERSIONS = "_versions"
HINT = "latest_version_hint.json"
_U64_MAX = 2**64 - 1
# LanceDB names a missing file by its path without the leading slash.
_MISSING = re.compile(r"Not found: /?([^\s,]+\.(?:lance|arrow|bin|idx))(?=[\s,]|$)")


@dataclass(frozen=True)
class Fallback:
    """The table is served at ``serving`` because the manifests of newer versions are unreadable."""

    dataset: Path
    serving: int
    unreadable: tuple[Path, ...]
    reason: str
    view: Path


def manifest_versions(dataset: Path) -> list[tuple[int, Path]]:
    """(version, manifest) of a Lance dataset, newest first (both naming schemes of Lance)."""
    found = []
    for path in (dataset / VERSIONS).glob("*.manifest"):
        try:
            number = int(path.stem)
        except ValueError:
            continue
        # Newer Lance names a manifest u64::MAX - version, so that names sort newest first.
        found.append((_U64_MAX - number if number > 2**63 else number, path))
    return sorted(found, reverse=True)


def open_readable_version(dataset: Path, table: str, failure: Exception) -> tuple[Any, Fallback]:
    """The table at its newest readable version, through a view; StoreError when none is readable."""
    import lance

    versions = manifest_versions(dataset)
    unreadable: list[Path] = []
    for version, manifest in versions:
        try:
            lance.dataset(str(dataset), version=version).count_rows()
        except Exception:
            unreadable.append(manifest)
            continue
        if not unreadable:
            raise failure  # the newest version is readable: the failure was something else
        view = Path(tempfile.mkdtemp(prefix=f"mem0-lance-v{version}-"))
        try:
            _link_view(dataset, view, table, version)
            tbl = lancedb.connect(str(view)).open_table(table)
        except Exception:
            shutil.rmtree(view, ignore_errors=True)
            raise
        fallback = Fallback(dataset, version, tuple(unreadable), _short(failure), view / f"{table}.lance")
        return tbl, fallback
    raise StoreError(
        f"the memory table {dataset} cannot be read: {_short(failure)}; no earlier version of it is "
        "readable either. Restore the data dir from a backup; `mem0-mcp doctor` lists what is damaged"
    ) from failure


def _link_view(dataset: Path, view: Path, table: str, version: int) -> None:
    target = view / f"{table}.lance"
    (target / VERSIONS).mkdir(parents=True)
    for entry in dataset.iterdir():
        if entry.name != VERSIONS:
            os.symlink(entry, target / entry.name)
    for number, manifest in manifest_versions(dataset):
        if number <= version:
            os.symlink(manifest, target / VERSIONS / manifest.name)


def close_view(fallback: Fallback | None) -> None:
    """Remove the view's links (never what they point to)."""
    if fallback is not None:
        shutil.rmtree(fallback.view.parent, ignore_errors=True)


def set_aside(fallback: Fallback, into: Path) -> list[Path]:
    """Make the served version the newest again: move the unreadable manifests into ``into``
    (kept, not deleted) and drop the version hint, which may name a version set aside.
    Returns where they went. The caller holds the write lock."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = into / f"lance-manifests-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    moved = []
    for manifest in fallback.unreadable:
        if manifest.exists():
            manifest.replace(folder / manifest.name)
            moved.append(folder / manifest.name)
    (fallback.dataset / VERSIONS / HINT).unlink(missing_ok=True)
    return moved


def missing_data_files(tbl: Any) -> list[Path]:
    """Data and deletion files the table's current version names but the disk lacks."""
    ds = tbl.to_lance()
    root = Path(ds.uri)
    missing = []
    for fragment in ds.get_fragments():
        for data_file in fragment.data_files():
            path = root / "data" / str(data_file.path)
            if not path.exists():
                missing.append(path)
    return missing


def missing_file_error(exc: Exception) -> StoreError | None:
    """A clear StoreError when a LanceDB failure is a file of the table gone missing."""
    found = _MISSING.search(str(exc))
    if found is None:
        return None
    return StoreError(
        f"the memory table is missing its file /{found.group(1)} (deleted or lost): the memories in "
        "it cannot be read. Restore the data dir from a backup; `mem0-mcp doctor` lists every "
        "missing file"
    )


def _short(exc: Exception) -> str:
    """LanceDB's message without the Rust source paths it appends."""
    text = str(exc).split(", /")[0]
    return text.removeprefix("lance error: ")
