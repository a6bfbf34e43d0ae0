"""Current state first: when a question asks about the present ("now", "currently", "still",
...), a newer fact about the same thing ranks above an older one it may have replaced, and the
older one says so (``possibly_outdated_by``). Other questions, and turns of stored conversations,
rank as they did."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

PRESENT = re.compile(
    r"\b(now|nowadays|currently|current|these days|still|anymore|any more|latest|at the moment|"
    r"at present|presently|today|right now|as of now)\b",
    re.IGNORECASE,
)


def asks_present(query: str) -> bool:
    """Whether a question is about how things are now."""
    return PRESENT.search(query) is not None


def when(row: Mapping[str, Any]) -> str:
    """When a memory's fact held from: its event time, else when it was stored."""
    return str(row.get("event_at") or row.get("created_at") or "")


def current_first(
    rows: list[dict[str, Any]], vectors: Mapping[str, np.ndarray], floor: float
) -> list[tuple[dict[str, Any], str | None]]:
    """``rows`` (ranked) reordered so that no row ranks above a newer row about the same thing
    (cosine >= ``floor``), each with the id of the newest such row (None when there is none).

    Rows without a vector keep their place and are never compared.
    """
    ids = [str(r["id"]) for r in rows]

    def same_thing(a: str, b: str) -> bool:
        va, vb = vectors.get(a), vectors.get(b)
        return va is not None and vb is not None and float(va @ vb) >= floor

    by_id = {str(r["id"]): r for r in rows}
    newer: dict[str, str] = {}
    for a in ids:
        later = [b for b in ids if b != a and when(by_id[b]) > when(by_id[a]) and same_thing(a, b)]
        if later:
            newer[a] = max(later, key=lambda b: when(by_id[b]))
    order = list(ids)
    i = 0
    # Each move puts a strictly newer row earlier, so this ends within len(rows)**2 moves.
    while i < len(order):
        a = order[i]
        later = [b for b in order[i + 1 :] if when(by_id[b]) > when(by_id[a]) and same_thing(a, b)]
        if later:
            moved = max(later, key=lambda b: when(by_id[b]))
            order.remove(moved)
            order.insert(i, moved)
            continue
        i += 1
    return [(by_id[r], newer.get(r)) for r in order]
