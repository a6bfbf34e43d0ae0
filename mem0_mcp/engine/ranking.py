"""How dense and full-text candidates become one ranked list with scores in [0, 1].

Every choice here was measured on the LoCoMo turn-recall benchmark (benchmarks/locomo.py); the
figures are in the comments so a later change can be judged against them.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

_WORD = re.compile(r"[^\W_]+")

# Share of the final score given to a memory whose speaker (``name``) the query names: "what did
# Caroline say about ..." is about Caroline's messages. Worth about +3 frac@10 on LoCoMo.
NAME_BOOST = 0.2
# Same for a memory whose event time falls in a period the query names ("in June", "on May 3,
# 2023"): +0.7 frac@10 on LoCoMo, where 15% of the questions carry such a cue.
TIME_BOOST = 0.2
# An event is often told some days after it happened ("we went camping last week"): a memory
# dated up to this long after the named period still matches.
TIME_SLACK = timedelta(days=7)
# The same cue as evidence of relevance (ranking.relevance): a memory of the period a question
# names is about it even when its words are not ("What happened to John in 2022?"). The boost's
# value; without it the relevance gate dropped most such LoCoMo questions (rejection 70% vs 83%
# at the same frac@10 cost, benchmarks/score_threshold.py).
TIME_EVIDENCE = TIME_BOOST
# Weight of the graph retriever (a memory stating a fact about an entity the query names by its
# role, "my sister", "the user's dog": GraphMemory.memory_links). Rule: as much as the two word
# retrievers together (dense share + text share = 1), so a linked memory ties with one that tops
# both; the other scores break the tie. The words of such a query ("sister", "dog") are by
# construction those of the memory that names the role ("Has a sister named Lena"), not of the
# one that answers it ("Lena lives in Vienna"): a smaller share cannot lift the answer over it.
# Only queries with such a role get links; every other query ranks as without the graph.
GRAPH_WEIGHT = 1.0
# A link as evidence of relevance (ranking.relevance): as much as a named period's. "Where is
# the user's manager based?" shares neither words nor much meaning with "Priya works from the
# Singapore office"; the link is what says it answers.
GRAPH_EVIDENCE = 0.2


_CAPITALIZED = re.compile(r"\b([A-Z][^\W_]*)(['’]s)?\b")


def dense_query(query: str, names: frozenset[str] | set[str]) -> str:
    """The text the embedder sees for a query: speakers it names become pronouns.

    The name boost already favours a named speaker's memories. Left in the vector, the name pulls
    it toward every message by or about that person, all of which carry the name, and away from
    the topic asked about: "When did they go to the support group?" embeds the question better
    than "When did Caroline ...". LoCoMo frac@10 +1.0 (removing the name: +0.5). ``names`` holds
    lowercase name words; only capitalized words are touched, so a speaker called "Will" leaves
    "what will ..." alone.
    """
    if not names:
        return query

    def swap(m: re.Match[str]) -> str:
        if m.group(1).lower() not in names:
            return m.group(0)
        return "their" if m.group(2) else "they"

    return _CAPITALIZED.sub(swap, query)


def words(text: str) -> set[str]:
    """Lowercase word tokens (letters and digits of any script)."""
    return set(_WORD.findall(text.lower()))


@dataclass
class Candidate:
    row: dict[str, Any]
    cosine: float = 0.0  # raw cosine similarity
    dense: float = 0.0  # cosine, min-max normalized over this query's dense candidates
    text: float = 0.0  # BM25, normalized to [0, 1] within this query
    named: bool = False  # the query names this memory's speaker
    dated: bool = False  # the memory's event time is in a period the query names
    graph: float = 0.0  # the graph retriever's score in [0, 1] (0: not linked)
    score: float = 0.0  # the ranking score: relative to this query's candidates
    coverage: float = 0.0  # share of the query's lexical evidence (BM25 over its ceiling)
    relevance: float = 0.0  # the reported score: absolute, comparable across queries
    sources: set[str] = field(default_factory=set)


def fuse(
    dense_hits: Sequence[dict[str, Any]],
    text_hits: Sequence[dict[str, Any]],
    *,
    vector_weight: float,
    query: str | None = None,
    linked: Mapping[str, float] | None = None,
    linked_rows: Sequence[dict[str, Any]] = (),
    live_frame: bool = False,
) -> list[Candidate]:
    """Normalized score fusion: a weighted sum of normalized cosine and max-normalized BM25.

    That ranks; it says nothing across queries (the best hit of any query scores high). So each
    candidate also gets ``relevance`` (see ``relevance``): the retrievers' own evidence, which
    means the same for every query of one model; it is what results report and what a threshold
    and the gate cut.

    Unlike reciprocal rank fusion it keeps how far apart candidates are. Cosines of one small
    model crowd into a narrow band (0.3-0.6) whose position moves from query to query, so the
    dense side is min-max normalized over its candidates, like BM25 is by its maximum: with that,
    a dense weight of 0.4 beat the clamped raw cosine at any weight (71.7 vs 70.3 frac@10).

    ``linked``: memory id -> the graph retriever's score, adding GRAPH_WEIGHT of it;
    ``linked_rows``: rows it links that neither other retriever found. Without links the
    ranking is exactly the two retrievers'.

    ``live_frame``: the hits include superseded rows, read only to pass their evidence on
    (pass_to_successors); the normalization is taken over the live rows alone and the superseded
    ones are scored in that frame, clipped to [0, 1], so the live rows rank as without them.
    """
    by_id: dict[str, Candidate] = {}
    sims = [1.0 - float(hit.get("_distance", 1.0)) for hit in dense_hits]
    framing = [
        s for h, s in zip(dense_hits, sims, strict=True) if not (live_frame and h.get("superseded_at"))
    ]
    lo, hi = (min(framing), max(framing)) if framing else (min(sims), max(sims)) if sims else (0.0, 0.0)
    for hit, sim in zip(dense_hits, sims, strict=True):
        cand = by_id.setdefault(hit["id"], Candidate(row=hit))
        cand.cosine = sim
        cand.dense = min(1.0, max(0.0, (sim - lo) / (hi - lo))) if hi > lo else 1.0
        cand.sources.add("vector")
    top_text = max(
        (float(h.get("_score", 0.0)) for h in text_hits if not (live_frame and h.get("superseded_at"))),
        default=0.0,
    ) or max((float(h.get("_score", 0.0)) for h in text_hits), default=0.0)
    for hit in text_hits:
        cand = by_id.setdefault(hit["id"], Candidate(row=hit))
        cand.text = min(1.0, float(hit.get("_score", 0.0)) / top_text) if top_text > 0 else 0.0
        cand.coverage = float(hit.get("_coverage", 0.0))
        cand.sources.add("text")
    links = linked or {}
    for hit in linked_rows:
        by_id.setdefault(hit["id"], Candidate(row=hit))
    for key, value in links.items():
        if key in by_id:
            by_id[key].graph = max(0.0, min(1.0, float(value)))
            by_id[key].sources.add("graph")
    graph_weight = GRAPH_WEIGHT if any(c.graph for c in by_id.values()) else 0.0
    query_words = words(query) if query else set()
    cues = time_cues(query) if query else []
    for cand in by_id.values():
        base = vector_weight * cand.dense + (1.0 - vector_weight) * cand.text + graph_weight * cand.graph
        name = cand.row.get("name")
        cand.named = bool(name and query_words and words(str(name)) & query_words)
        when = _parse_time(cand.row.get("event_at")) if cues else None
        cand.dated = when is not None and any(cue.matches(when) for cue in cues)
        cand.relevance = relevance(cand)
        # Divided back into [0, 1] so a caller's threshold keeps its meaning.
        boosts = NAME_BOOST * cand.named + TIME_BOOST * cand.dated
        cand.score = (base + boosts) / (1.0 + graph_weight + NAME_BOOST + (TIME_BOOST if cues else 0.0))
    return sorted(by_id.values(), key=rank_key)


def relevance(cand: Candidate) -> float:
    """The reported score: the evidence of each retriever added up, clipped to [0, 1].

    Dense: the cosine (for a memory the nearest vectors did not include, ``_cosine`` when the
    search could read it: engine/search.py fill_evidence). Text: ``coverage``, the share of the
    query's lexical evidence the memory carries (a query word the scope never uses counts in
    full against it). Time: TIME_EVIDENCE when the memory's event falls in a period the query
    names. Graph: GRAPH_EVIDENCE when the graph links it to an entity the query names by its
    role. The same scale for every query; the two word retrievers agree on what is relevant far
    more often than on off-topic questions (benchmarks/score_threshold.py: against the higher
    of cosine and coverage, off-topic rejection at <= 1 point of LoCoMo frac@10 rose from 59% to
    82%). Tests: tests/test_scores.py.
    """
    cosine = cand.cosine if "vector" in cand.sources else float(cand.row.get("_cosine", 0.0))
    evidence = max(0.0, cosine) + cand.coverage + TIME_EVIDENCE * cand.dated + GRAPH_EVIDENCE * cand.graph
    return min(1.0, evidence)


def rank_key(c: Candidate) -> tuple[float, float, str]:
    """Best first. A tie between a linked memory and the one that tops both word retrievers (the
    one naming the role: "Lives with their partner Noor" for "Where did the user's partner grow
    up?") goes to the link, the evidence the words cannot give; the ids decided it before (a coin
    flip between runs)."""
    return (-c.score, -c.graph, str(c.row["id"]))


def pass_to_successors(
    ranked: Sequence[Candidate], successors: Mapping[str, dict[str, Any]]
) -> list[Candidate]:
    """The ranking without superseded memories, each having passed its evidence to the live
    memory that replaced it.

    A memory superseded by another (an agent's ``supersedes``, the LLM manager's DELETE with a
    replacement) was the same fact in its earlier state, so the questions it answered are now
    the replacement's: "Which company does the user work for?" matches "Works at Stripe", not
    "Started a new job at Anthropic" (cosine 0.09 with MiniLM). The replacement takes the higher
    of its own score and relevance and its predecessor's; no weight to tune, and a store without
    superseded memories (LoCoMo) ranks exactly as before. ``successors``: superseded id -> the
    row of the live memory at the end of its chain; a superseded memory without one (its
    replacement was deleted) just leaves the list.
    """
    if not successors and not any(c.row.get("superseded_at") for c in ranked):
        return list(ranked)  # nothing superseded among them: ranked as fused (the usual case)
    by_id = {str(c.row["id"]): c for c in ranked if not c.row.get("superseded_at")}
    for cand in ranked:
        if not cand.row.get("superseded_at"):
            continue
        row = successors.get(str(cand.row["id"]))
        if row is None:
            continue
        heir = by_id.get(str(row["id"]))
        if heir is None:  # the replacement's own words did not make it a candidate
            heir = by_id[str(row["id"])] = Candidate(row=dict(row))
        heir.score = max(heir.score, cand.score)
        heir.relevance = max(heir.relevance, cand.relevance)
        heir.sources.add("replaced")
    return sorted(by_id.values(), key=rank_key)


_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
# "May 3, 2023", "3 May 2023", "May 2023", "in May", "2023" (a month alone needs "in"/"on"/"during"
# before it: "may" is also a verb).
_DATE_PATTERNS = (
    re.compile(rf"\b(?P<month>{_MONTH_RE})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b"),
    re.compile(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<month>{_MONTH_RE})\.?,?\s+(?P<year>\d{{4}})\b"),
    re.compile(rf"\b(?P<month>{_MONTH_RE})\.?,?\s+(?P<year>\d{{4}})\b"),
    re.compile(rf"\b(?:in|on|during|of|since|by)\s+(?:early\s+|mid\s+|late\s+)?(?P<month>{_MONTH_RE})\b"),
    re.compile(r"\b(?:in|during|of)\s+(?P<year>(?:19|20)\d{2})\b"),
)


@dataclass(frozen=True)
class TimeCue:
    """A calendar period the query names; None parts are unconstrained ("in May": any year)."""

    year: int | None
    month: int | None
    day: int | None

    def period(self, year: int) -> tuple[datetime, datetime]:
        if self.month is None:
            return datetime(year, 1, 1), datetime(year + 1, 1, 1)
        start = datetime(year, self.month, self.day or 1)
        if self.day is not None:
            return start, start + timedelta(days=1)
        return start, start + timedelta(days=calendar.monthrange(year, self.month)[1])

    def matches(self, when: datetime, slack: timedelta = TIME_SLACK) -> bool:
        """Is ``when`` (naive, or compared on its own wall clock) in the period or just after it?"""
        when = when.replace(tzinfo=None)
        # No year ("in June"): any year; the year before counts for "in December" told in January.
        years = [self.year] if self.year is not None else [when.year, when.year - 1]
        for year in years:
            try:
                start, end = self.period(year)
            except ValueError:  # "February 30"
                continue
            if start <= when < end + slack:
                return True
        return False


def time_cues(query: str) -> list[TimeCue]:
    text = query.lower()
    cues: list[TimeCue] = []
    taken: list[tuple[int, int]] = []
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue  # "May 3, 2023" must not also count as "May 2023" and "in 2023"
            taken.append(m.span())
            parts = m.groupdict()
            cues.append(
                TimeCue(
                    year=int(parts["year"]) if parts.get("year") else None,
                    month=_MONTHS[parts["month"].rstrip(".")] if parts.get("month") else None,
                    day=int(parts["day"]) if parts.get("day") else None,
                )
            )
    return cues


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
