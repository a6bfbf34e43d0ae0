"""An add's graph half before the memory ids exist: mentions resolved to entities, and what to write."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mem0_mcp.graph.extraction import Extraction
from mem0_mcp.models import EntityMerge, GraphEntity, GraphRelation, Usage


@dataclass
class Mention:
    """A mention resolved to a stored entity, or to be created."""

    name: str
    norm: str
    type: str
    vector: np.ndarray
    entity: GraphEntity | None = None
    # How it was resolved to ``entity``: "name" (the same normalized name), "alias" or "embedding".
    merged_by: str | None = None

    def merge(self) -> EntityMerge | None:
        """What to tell the caller when this name now stands for a stored entity of another name."""
        if self.entity is None or self.merged_by not in ("alias", "embedding"):
            return None
        by = "alias" if self.merged_by == "alias" else "embedding"
        return EntityMerge(mention=self.name, into=self.entity.name, by=by)


def with_merges(rel: GraphRelation, *mentions: Mention | None) -> GraphRelation:
    """``rel`` saying which of its names were merged into a stored entity of another name: a write
    is never folded into another entity silently."""
    merges = [m for m in (x.merge() for x in mentions if x is not None) if m is not None]
    return rel.model_copy(update={"merged": merges}) if merges else rel


@dataclass
class PreparedAdd:
    """What an add extracted and resolved before the memory ids exist; ``GraphMemory.apply``
    writes it."""

    extraction: Extraction
    resolved: dict[str, Mention]
    existing: list[GraphRelation]
    invalidate: dict[str, str]  # relation id -> reason
    usage: Usage = field(default_factory=Usage)
