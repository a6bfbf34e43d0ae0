"""BM25 over the rows of the in-process copy, so a plain scope search never waits on disk.

LanceDB's full-text search costs ~8.6 ms a query at 10k memories here (most of it the scope
prefilter), as much as embedding the query. Scoring the same rows from postings held in memory
costs well under a millisecond. The analysis mirrors the LanceDB index the table keeps for
filtered searches (its defaults: split on non-alphanumerics, lower case, Snowball English
stemming, English stop words, ASCII folding; tokens over 40 characters dropped) and the scoring is
Okapi BM25 with LanceDB's constants and statistics, so both paths rank alike (scores equal to
the third decimal on 300 LoCoMo questions; tests/test_text_index.py checks it).

Positions are the copy's row positions. A row is never re-indexed in place: the copy moves a row
whose text changes to a new position, and dead positions are skipped through the alive mask.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from functools import lru_cache

import numpy as np
import snowballstemmer

K1 = 1.2
B = 0.75
MAX_TOKEN_LENGTH = 40
# The English stop words LanceDB removes (NLTK's list). They are matched after stemming, as
# LanceDB does: "doing" goes (stem "do"), "because" stays (stem "becaus").
_STOP_WORDS_TEXT = """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be been
    being have has had having do does did doing a an the and but if or because as until while of
    at by for with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how all any
    both each few more most other some such no nor not only own same so than too very s t can
    will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't
    didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't
    mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't
    wouldn wouldn't"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_TOKEN = re.compile(r"[^\W_]+")
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def _term(token: str) -> str | None:
    # LanceDB's order: stem, drop stop words, then fold accents ("brûlée" stems as itself and
    # is indexed as "brulee", which the query "brulee", stemmed to "brule", does not match).
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    if token.isdigit():  # numbers stem to themselves; there are too many for the cache
        return token
    term = str(_STEMMER.stemWord(token))
    if term in STOP_WORDS:
        return None
    if not term.isascii():
        folded = unicodedata.normalize("NFKD", term)
        term = "".join(c for c in folded if not unicodedata.combining(c))
    return term


def terms(text: str) -> list[str]:
    """The indexed terms of a text, repeated as often as they occur."""
    out = []
    for token in _TOKEN.findall(text.lower()):
        term = _term(token)
        if term:
            out.append(term)
    return out


class TextIndex:
    """Postings (position, term frequency) per term, and the length of every indexed row."""

    def __init__(self) -> None:
        self._positions: dict[str, array] = {}
        self._freqs: dict[str, array] = {}
        self._lengths = array("f")

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, position: int, text: str | None) -> None:
        if position != len(self._lengths):
            raise ValueError(f"text index out of step: position {position}, expected {len(self._lengths)}")
        counts: dict[str, int] = {}
        for term in terms(text or ""):
            counts[term] = counts.get(term, 0) + 1
        for term, count in counts.items():
            self._positions.setdefault(term, array("i")).append(position)
            self._freqs.setdefault(term, array("f")).append(count)
        self._lengths.append(float(sum(counts.values())))

    def search(self, query: str, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Positions and BM25 scores of the best ``k`` rows among ``allowed``, best first, and the
        query's ceiling (0.0 without a hit; see ``scores``)."""
        found = self.scores(query, allowed) if k > 0 else None
        if found is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), 0.0
        scores, ceiling = found
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        hits = hits[np.argsort(-scores[hits], kind="stable")]
        return hits, scores[hits], ceiling if len(hits) else 0.0

    def scores(self, query: str, allowed: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The BM25 score of every position (0 outside ``allowed``) and the query's ceiling: the
        score a row holding every query term many times would reach among ``allowed``. A row's
        score over it is the share of the query's lexical evidence the row carries, on the same
        scale for every query. A term the scope never saw counts at its rarest. None when the
        query has no term or nothing is allowed.

        Collection statistics (document count, average length, document frequencies) are taken
        over the ``allowed`` rows only, as LanceDB does under a prefilter: a scope's own
        vocabulary decides what is rare in it.
        """
        n = len(allowed)
        # A term the query repeats counts again, as in LanceDB.
        query_terms = terms(query)
        if not n or not query_terms:
            return None
        lengths = np.frombuffer(self._lengths, dtype=np.float32, count=n)
        docs = int(allowed.sum())
        if docs == 0:
            return None
        avg = float(lengths[allowed].sum()) / docs or 1.0
        scores = np.zeros(n, dtype=np.float32)
        # The ceiling: each query term at its idf (a term the scope lacks at df 0, its rarest).
        unseen = float(np.log1p((docs + 0.5) / 0.5)) * (K1 + 1.0)
        ceiling = 0.0
        for term in query_terms:
            if term not in self._positions:
                ceiling += unseen
                continue
            pos = np.frombuffer(self._positions[term], dtype=np.int32)
            tf = np.frombuffer(self._freqs[term], dtype=np.float32)
            inside = pos < n
            pos, tf = pos[inside], tf[inside]
            keep = allowed[pos]
            df = int(keep.sum())
            if not df:
                ceiling += unseen
                continue
            idf = np.log1p((docs - df + 0.5) / (df + 0.5))
            ceiling += float(idf) * (K1 + 1.0)
            pos, tf = pos[keep], tf[keep]
            norm = K1 * (1.0 - B + B * lengths[pos] / avg)
            scores[pos] += idf * tf * (K1 + 1.0) / (tf + norm)
        return scores, ceiling
