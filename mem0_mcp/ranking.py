"""How dense and full-text candidates become one ranked list with scores in [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Candidate:
    row: dict[str, Any]
    dense: float = 0.0  # cosine similarity, clamped to [0, 1]
    text: float = 0.0  # BM25, normalized to [0, 1] within this query
    score: float = 0.0
    sources: set[str] = field(default_factory=set)


def fuse(
    dense_hits: Sequence[dict[str, Any]],
    text_hits: Sequence[dict[str, Any]],
    *,
    vector_weight: float,
) -> list[Candidate]:
    """Normalized score fusion: a weighted sum of cosine similarity and max-normalized BM25.

    Unlike reciprocal rank fusion it keeps how far apart candidates are, and the result is an
    absolute-enough score for a caller's ``threshold``.
    """
    by_id: dict[str, Candidate] = {}
    for hit in dense_hits:
        sim = 1.0 - float(hit.get("_distance", 1.0))
        cand = by_id.setdefault(hit["id"], Candidate(row=hit))
        cand.dense = min(1.0, max(0.0, sim))
        cand.sources.add("vector")
    top_text = max((float(h.get("_score", 0.0)) for h in text_hits), default=0.0)
    for hit in text_hits:
        cand = by_id.setdefault(hit["id"], Candidate(row=hit))
        cand.text = float(hit.get("_score", 0.0)) / top_text if top_text > 0 else 0.0
        cand.sources.add("text")
    for cand in by_id.values():
        cand.score = vector_weight * cand.dense + (1.0 - vector_weight) * cand.text
    return sorted(by_id.values(), key=lambda c: (-c.score, c.row["id"]))
