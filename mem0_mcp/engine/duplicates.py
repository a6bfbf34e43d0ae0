"""Same-text duplicates on object storage: found and merged by ``mem0-mcp doctor``.

Adds keep one memory per text, scope and time across nodes (engine/cross_node.py); a duplicate
can still remain when a node stopped between its append and that check, when the check could not
read the store (the add logs a warning), or from before the check existed. The doctor lists such
groups and, with ``--repair``, keeps the first stored of each and marks the others superseded by
it (readable with get and history, restorable, out of search), each with a DELETE event of source
"doctor". First stored, not first created: an add racing the doctor keeps the same row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mem0_mcp.clock import now_iso
from mem0_mcp.engine.storage import Storage
from mem0_mcp.engine.supersede import mark_superseded
from mem0_mcp.errors import StoreError
from mem0_mcp.models import Scope
from mem0_mcp.stores.columns import SCOPE_COLUMNS
from mem0_mcp.stores.filters import sql_str

DOCTOR = "doctor"
_SHOWN_TEXT = 60


@dataclass(frozen=True)
class DuplicateGroup:
    """Live memories of one scope with the same text and time; ``keep`` was stored first."""

    scope: Scope
    text: str
    hash: str
    keep: str
    others: tuple[str, ...]

    def line(self) -> str:
        text = self.text if len(self.text) <= _SHOWN_TEXT else self.text[: _SHOWN_TEXT - 1] + "…"
        where = ", ".join(f"{k}={v}" for k, v in self.scope.as_dict().items())
        return (
            f"memory table: {len(self.others) + 1} memories of {where} hold the same text {text!r}: "
            f"{self.keep} (stored first) and {', '.join(self.others)}; `mem0-mcp doctor --repair` "
            "keeps the first and marks the others superseded by it"
        )


def find_duplicates(storage: Storage) -> list[DuplicateGroup]:
    """Groups of live memories with the same text, scope (exactly) and event time, in the order
    stored. Raises StoreError when the store cannot be read."""
    earlier = storage.earlier
    if earlier is None:
        return []
    try:
        rows = earlier.live_rows(("id", "hash", "memory", "event_at", *SCOPE_COLUMNS))
    except Exception as exc:
        raise StoreError(f"cannot read the memory table of {storage.settings.store_shown}: {exc}") from exc
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["hash"], row["event_at"], *(row[c] for c in SCOPE_COLUMNS))
        groups.setdefault(key, []).append(row)
    found = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda r: r["_rowaddr"])
        first = members[0]
        found.append(
            DuplicateGroup(
                scope=Scope(**{c: first[c] for c in SCOPE_COLUMNS}),
                text=first["memory"],
                hash=first["hash"],
                keep=first["id"],
                others=tuple(r["id"] for r in members[1:]),
            )
        )
    found.sort(key=lambda g: (tuple(g.scope.model_dump().values()), g.text))
    return found


def merge_duplicates(storage: Storage, groups: list[DuplicateGroup]) -> int:
    """Mark each group's others superseded by its first memory, with history; how many were.

    A memory whose text changed since it was listed, or that is gone or superseded, is left as it
    is (and a group whose first memory is, entirely). Raises StoreError."""
    storage.refuse_writes()
    merged = 0
    with storage.writing():
        for group in groups:
            members = (group.keep, *group.others)
            rows = storage.vectors.query(f"id IN ({', '.join(sql_str(i) for i in members)})")
            same = {r["id"] for r in rows if r["hash"] == group.hash and not r.get("superseded_at")}
            if group.keep not in same:
                continue
            others = [i for i in group.others if i in same]
            done, records = mark_superseded(storage, group.scope, others, group.keep, now_iso(), "person")
            storage.history.add([{**r, "source": DOCTOR} for r in records])
            merged += len(done)
    if merged:
        storage.after_write(merged)
    return merged
