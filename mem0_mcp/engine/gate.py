"""The default relevance gate of a scope: the score that questions it has no answer to rarely
reach there.

A search given no ``threshold`` returns nothing when its best result scores under the gate (the
question is about something never remembered). What an unanswerable question scores depends on
the scope: its best result is the best of everything stored, so it grows with the number of
memories and with how they are written (short facts match more readily than turns of a chat).
On LoCoMo and our own stores the best score of an off-topic question, 80th percentile: 0.12 in a
scope of 3 conversation turns, 0.20 at 20, 0.28 at 100, 0.36 at ~600; 0.29 in a store of 20
facts. One number cannot serve a user's first facts and a year of conversation alike.

So each scope measures its own: the generic questions of engine/null_questions.py are searched
there exactly as a user's query is (same retrievers, same score), and the gate is the
``search_gate_quantile`` of their best scores (0.88: chosen by leave-one-conversation-out on
LoCoMo dev, benchmarks/score_threshold.py). A measurement holds until the scope's size moves by
more than a tenth (any change below ten memories), checked at most every SIZE_RECHECK_SECONDS
when the in-process copy cannot count the scope.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from mem0_mcp.engine.null_questions import NULL_QUESTIONS
from mem0_mcp.engine.rows import EmbedFn
from mem0_mcp.engine.search import Searcher, SearchRequest
from mem0_mcp.engine.storage import Storage, where
from mem0_mcp.models import Scope

logger = logging.getLogger(__name__)

# Scopes whose measurement is kept (least recently used dropped first).
MAX_SCOPES = 4096
# Without the in-process copy a scope's size is a query to the table: asked this often at most.
SIZE_RECHECK_SECONDS = 30.0
# A measurement holds while the scope's size stays within this share of the size it was made at.
SIZE_TOLERANCE = 0.1


@dataclass(frozen=True)
class NullScores:
    """The best score of each null question in one scope, and the scope's size then."""

    size: int
    scores: tuple[float, ...]
    checked: float  # time.monotonic() of the last size check
    gate: float  # quantile_gate of ``scores`` (numpy's quantile takes ~30 us: once, not per search)


def quantile_gate(scores: Sequence[float], q: float) -> float:
    """The gate that rejects the share ``q`` of null questions with best ``scores`` (0 for none)."""
    return float(np.quantile(scores, q)) if len(scores) else 0.0


class ScopeGates:
    """Per-scope default gates for one Storage (see the module docstring)."""

    def __init__(self, storage: Storage, embed: EmbedFn) -> None:
        self.storage = storage
        self._embed = embed
        self._vectors: dict[str, np.ndarray] | None = None
        # Its own Searcher: the null questions' vectors are computed once and looked up here,
        # while the search code, and so the score, is the one every query goes through.
        self._searcher = Searcher(storage, self._lookup)
        self._measured: OrderedDict[tuple[str | None, ...], NullScores] = OrderedDict()
        self._busy: dict[tuple[str | None, ...], threading.Lock] = {}  # a lock per scope measuring
        self._lock = threading.Lock()

    def gate(self, scope: Scope) -> float:
        """The gate a search of ``scope`` without a ``threshold`` applies: the fixed
        ``search_threshold`` when one is set, else the scope's measured one (0 for an empty
        scope). Raises StoreError when the store cannot be read."""
        fixed = self.storage.settings.search_threshold
        if fixed != "auto":
            return float(fixed)
        return self.null_scores(scope).gate

    def null_scores(self, scope: Scope) -> NullScores:
        """The null questions' best scores in ``scope``, measured again when its size moved
        (see the module docstring). Raises StoreError when the store cannot be read."""
        key = (scope.user_id, scope.agent_id, scope.run_id)
        with self._lock:
            known = self._measured.get(key)
            if known is not None:
                self._measured.move_to_end(key)
        size, from_table = self._size(scope, known)
        if known is not None and (size is None or not _moved(known.size, size)):
            if from_table:  # the next table count is due SIZE_RECHECK_SECONDS from now
                known = replace(known, checked=time.monotonic())
                with self._lock:
                    self._measured[key] = known
            return known
        with self._lock:
            busy = self._busy.setdefault(key, threading.Lock())
        # One measurement per scope at a time; other scopes' searches do not wait for it.
        with busy:
            with self._lock:
                latest = self._measured.get(key)
            if latest is not None and latest is not known and latest.size == size:
                return latest  # measured by another search meanwhile
            measured = self._measure(scope, size if size is not None else 0)
            with self._lock:
                self._measured[key] = measured
                while len(self._measured) > MAX_SCOPES:
                    dropped, _ = self._measured.popitem(last=False)
                    self._busy.pop(dropped, None)
            return measured

    def close(self) -> None:
        self._searcher.close()

    def _size(self, scope: Scope, known: NullScores | None) -> tuple[int | None, bool]:
        """The scope's row count, and whether the table counted it (no in-process copy to ask);
        None when only the table can tell and it was asked lately."""
        values = scope.model_dump()
        copy = self.storage.vectors.copy
        # Asked after a search's retrieval, the copy is current already: counting is ~10 us.
        counted = copy.count(values) if copy is not None else None
        if counted is None and (ticket := self.storage.copy_with_journal()) is not None:
            counted = ticket.copy.count(values)
        if counted is not None:
            return counted, False
        if known is not None and known.size and time.monotonic() - known.checked < SIZE_RECHECK_SECONDS:
            return None, False
        self.storage.move_journal()
        return self.storage.vectors.count(where(scope)), True

    def _measure(self, scope: Scope, size: int) -> NullScores:
        if size == 0:
            return NullScores(size=0, scores=(), checked=time.monotonic(), gate=0.0)
        started = time.perf_counter()
        scores = []
        for question in NULL_QUESTIONS:
            req = SearchRequest(
                query=question,
                scope=scope,
                where=where(scope),
                limit=1,
                threshold=None,
                gate=0.0,
                plain=True,
                include_superseded=False,
                filters=None,
                where_all=where(scope, include_superseded=True),
            )
            found = self._searcher.search(req, None).results
            scores.append(float(found[0].score or 0.0) if found else 0.0)
        logger.debug(
            "relevance gate of %s measured (%d memories) in %.0f ms",
            scope.as_dict(),
            size,
            1000 * (time.perf_counter() - started),
        )
        gate = quantile_gate(scores, self.storage.settings.search_gate_quantile)
        return NullScores(size=size, scores=tuple(scores), checked=time.monotonic(), gate=gate)

    def _lookup(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of null questions, embedded together on first use; anything else embedded."""
        if self._vectors is None:
            questions = list(NULL_QUESTIONS)
            self._vectors = dict(zip(questions, self._embed(questions), strict=True))
        known = self._vectors
        if all(t in known for t in texts):
            return np.stack([known[t] for t in texts])
        return self._embed(texts)


def _moved(was: int, now: int) -> bool:
    return abs(now - was) > SIZE_TOLERANCE * was
