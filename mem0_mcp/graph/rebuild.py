"""Re-derive a scope's graph from its stored memories (after a model switch, or a lost graph).

The memories are the source of truth and the graph is derived from them, so a rebuild clears the
relations that came from memories and extracts them again, memory by memory. Relations an agent
wrote itself (``add_relation``) have no memory to come back from: they stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypedDict

from mem0_mcp.errors import InvalidInputError
from mem0_mcp.graph.extraction import EXPLICIT_SOURCE
from mem0_mcp.graph.memory import GraphMemory
from mem0_mcp.models import MemoryPage, Scope

logger = logging.getLogger(__name__)

# A page of the scope's memories from an offset (the engine's get_all).
PageReader = Callable[[int], MemoryPage]


class RebuildCounts(TypedDict):
    memories: int
    relations: int
    failed: int


def rebuild_graph(
    graph: GraphMemory,
    scope: Scope,
    pages: PageReader,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildCounts:
    """Clear the scope's derived relations and extract them again from every memory ``pages``
    yields; a memory whose extraction fails is counted and skipped. ``progress(done, total)``
    after each memory. Raises ``InvalidInputError`` when there is no LLM to extract with."""
    extractor = graph.extractor()
    if extractor is None:
        raise InvalidInputError(
            "llm_provider", "rebuilding the graph needs an LLM backend to extract relations"
        )
    _, old = graph.store.all_of(scope)
    with graph.store.burst(write=True):
        for source in sorted({s for r in old for s in r.sources} - {EXPLICIT_SOURCE}):
            graph.store.forget_source(source)
    done = relations = failed = 0
    offset: int | None = 0
    while offset is not None:
        page = pages(offset)
        for item in page.results:
            item_scope = Scope(user_id=item.user_id, agent_id=item.agent_id, run_id=item.run_id)
            try:
                prepared = graph.prepare(extractor, item.memory, item_scope)
                relations += len(
                    graph.apply(prepared, item_scope, [item.id], item.event_at or item.created_at)
                )
            except Exception as exc:
                failed += 1
                logger.warning("graph rebuild: memory %s skipped: %s", item.id, exc)
            done += 1
            if progress:
                progress(done, page.total)
        offset = page.next_offset
    return {"memories": done, "relations": relations, "failed": failed}
