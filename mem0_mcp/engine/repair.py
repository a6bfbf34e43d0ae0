"""What ``mem0-mcp doctor --repair`` can mend of the findings of engine/checks.py.

- an unreadable newest version of the memory table: its manifest is set aside (kept) and the
  version served meanwhile becomes the newest again;
- journal rows that cannot enter the table: set aside, then re-embedded from their text with the
  configured embedder and added; a row whose text is unreadable is saved to a file, never dropped;
- memories without history: one ADD event each, rebuilt from the memory as it is now and marked
  ``source="rebuilt"`` (memory_history shows it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mem0_mcp.clock import now_iso
from mem0_mcp.config import Settings
from mem0_mcp.embedding import BackgroundEmbedder
from mem0_mcp.engine.checks import QUARANTINE_FILE, Store, unrecorded_changes
from mem0_mcp.engine.rows import EmbedInput, embed_inputs
from mem0_mcp.engine.storage import Storage
from mem0_mcp.engine.store_meta import read_meta
from mem0_mcp.stores.columns import ROW_COLUMNS
from mem0_mcp.stores.filters import sql_str
from mem0_mcp.stores.history import QuarantinedRow
from mem0_mcp.stores.lance_recovery import set_aside
from mem0_mcp.stores.locks import WriteLock

logger = logging.getLogger(__name__)

REBUILT = "rebuilt"
# Required text fields of a row that can go back into the table.
_ROW_TEXT = ("id", "memory", "hash", "search_text")
EmbedderFactory = Callable[[], Any]


@dataclass(frozen=True)
class Repair:
    """One thing the doctor did."""

    store: Store
    done: str

    def line(self) -> str:
        return f"repaired {self.store}: {self.done}"


def restore_readable_version(settings: Settings, storage: Storage) -> list[Repair]:
    """Make the version a fallback serves the newest again (the caller reopens the stores after)."""
    fb = storage.vectors.fallback
    if fb is None:
        return []
    # The storage's own locks refuse writes while it serves a fallback: these are the same files.
    with (
        WriteLock(settings.data_dir / "write.lock").hold(),
        WriteLock(settings.data_dir / "journal.lock").hold(),
    ):
        moved = set_aside(fb, settings.data_dir / QUARANTINE_FILE)
    where = ", ".join(str(p) for p in moved) or "nothing left to move"
    return [
        Repair(
            "memory table",
            f"version {fb.serving} of {fb.dataset} is the newest again; the unreadable manifests were "
            f"moved to {where} (restart servers on this data dir)",
        )
    ]


def repair_stores(storage: Storage, embedder: EmbedderFactory | None = None) -> list[Repair]:
    """Mend the journal and the history of writable stores; what was done, one entry per repair.

    ``embedder`` builds the embedder (default: the configured one), only when a row must be
    embedded again. Raises StoreError when the stores cannot be written.
    """
    storage.refuse_writes()
    if embedder is None:
        settings = storage.settings

        def embedder() -> Any:
            return BackgroundEmbedder.from_settings(settings)

    done: list[Repair] = []
    with storage.writing():
        storage.move_journal_locked()  # sets unreplayable rows aside, moves the rest
        quarantined = storage.history.quarantined()
        if quarantined:
            done += _put_back(storage, quarantined, embedder)
        done += _rebuild_history(storage)
        done += _record_unrecorded(storage)
    return done


def _put_back(storage: Storage, rows: list[QuarantinedRow], embedder: EmbedderFactory) -> list[Repair]:
    settings = storage.settings
    readable = {q.seq: row for q in rows if (row := _row_of(q)) is not None}
    done = []
    if readable:
        model = read_meta(settings).get("embedder_model")
        emb = embedder()
        if model is not None and model != emb.name:
            return [
                Repair(
                    "journal",
                    f"nothing: {len(readable)} set-aside memories need embedding, but the store was "
                    f"built with {model!r} and the configured embedder is {emb.name!r}",
                )
            ]
        ordered = list(readable.values())
        present = storage.vectors.existing_ids([r["id"] for r in ordered])
        todo = [r for r in ordered if r["id"] not in present]
        if todo:
            vectors = embed_inputs([EmbedInput.of_row(r) for r in todo], emb.embed, settings.context_vectors)
            storage.vectors.add(todo, np.asarray(vectors, dtype=np.float32))
        # A set-aside change of a memory the table holds (a journaled update, or an add already
        # moved) is not applied blindly: its text is saved beside the others, never dropped.
        changed = [q for q in rows if q.seq in readable and readable[q.seq]["id"] in present]
        if changed:
            path = _save(settings.data_dir / QUARANTINE_FILE, changed, storage)
            done.append(
                Repair(
                    "journal",
                    f"{len(changed)} set-aside rows of memories the table already holds were saved to "
                    f"{path} with their text: apply a change from there with update_memory if it is newer",
                )
            )
        storage.history.release_quarantined(list(readable))
        done.append(Repair("journal", f"{len(todo)} set-aside memories re-embedded and added to the table"))
    unreadable = [q for q in rows if q.seq not in readable]
    if unreadable:
        path = _save(settings.data_dir / QUARANTINE_FILE, unreadable, storage)
        storage.history.release_quarantined([q.seq for q in unreadable])
        done.append(
            Repair(
                "journal",
                f"{len(unreadable)} set-aside rows whose text is unreadable were saved to {path} "
                "(with the text their history recorded, when it did): add them again from there",
            )
        )
    return done


def _row_of(q: QuarantinedRow) -> dict[str, Any] | None:
    """The table row a quarantined journal row holds, when its text is readable."""
    try:
        row = json.loads(q.row) if q.row is not None else None
    except ValueError:
        return None
    if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in _ROW_TEXT):
        return None
    return {c: row.get(c) for c in ROW_COLUMNS}


def _save(folder: Path, rows: list[QuarantinedRow], storage: Storage) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "journal-rows.jsonl"
    with path.open("a", encoding="utf-8") as out:
        for q in rows:
            added = [h.new_memory for h in storage.history.get(q.memory_id) if h.event == "ADD"]
            record = {
                "memory_id": q.memory_id,
                "reason": q.reason,
                "text_in_history": added[0] if added else None,
                "row": q.row,
                "saved_at": now_iso(),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return path


def _rebuild_history(storage: Storage) -> list[Repair]:
    ids = [r["id"] for r in storage.vectors.query("", columns=("id",))]
    orphans = storage.history.ids_without_history(ids)
    if not orphans:
        return []
    entries = []
    for start in range(0, len(orphans), 500):
        chunk = ", ".join(sql_str(i) for i in orphans[start : start + 500])
        for row in storage.vectors.query(f"id IN ({chunk})"):
            # When the memory was made: the rebuilt event keeps the order of later ones.
            entries.append(_rebuilt(row, "ADD", None, row.get("created_at")))
    storage.history.add(entries)
    return [
        Repair(
            "history",
            f"{len(entries)} memories had no history: an ADD event was rebuilt for each from the "
            f'memory as it is now (source "{REBUILT}")',
        )
    ]


def _record_unrecorded(storage: Storage) -> list[Repair]:
    texts = storage.history.latest_texts()
    rows = unrecorded_changes(storage.vectors.query("", columns=("id", "memory")), texts)
    if not rows:
        return []
    full: dict[str, dict[str, Any]] = {}
    for start in range(0, len(rows), 500):
        chunk = ", ".join(sql_str(r["id"]) for r in rows[start : start + 500])
        full.update({r["id"]: r for r in storage.vectors.query(f"id IN ({chunk})")})
    entries = [_rebuilt(row, "UPDATE", texts.get(row["id"]), row.get("updated_at")) for row in full.values()]
    storage.history.add(entries)
    return [
        Repair(
            "history",
            f"{len(entries)} memories held a text their history did not end with: an UPDATE event "
            f'was recorded for each (source "{REBUILT}")',
        )
    ]


def _rebuilt(row: dict[str, Any], event: str, old: str | None, when: str | None) -> dict[str, Any]:
    """A history event the doctor writes for ``row`` as it is now, marked as rebuilt."""
    return {
        "memory_id": row["id"],
        "old_memory": old,
        "new_memory": row["memory"],
        "event": event,
        "created_at": when or now_iso(),
        "actor_id": row.get("actor_id"),
        "role": row.get("role"),
        "user_id": row.get("user_id"),
        "agent_id": row.get("agent_id"),
        "run_id": row.get("run_id"),
        "source": REBUILT,
    }
