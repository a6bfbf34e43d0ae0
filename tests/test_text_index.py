"""The in-process BM25 ranks like the LanceDB full-text index it stands in for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import FakeEmbedder, make_settings

from mem0_mcp.engine.memory import Memory
from mem0_mcp.stores.text_index import K1, TextIndex, terms

SENTENCES = [
    "I'm doing the running club on Sundays because it keeps me sane.",
    "Caroline went to the LGBTQ support group last Tuesday.",
    "Melanie painted a sunrise over the lake; she loves painting sunrises!",
    "We had coffee at a café in Zürich, the crème brûlée was great.",
    "The park near the park entrance is a national park.",
    "Don't forget: the dentist appointment is on 2023-05-07 at 10am.",
    "He's been collecting vinyl records since 1998, mostly jazz records.",
    "My sister's birthday party was at the theme park in June.",
]
QUERIES = [
    "When did Caroline go to the support group?",
    "painting sunrise",
    "cafe creme brulee in Zurich",
    "Would Melanie prefer a national park or a theme park?",
    "records collecting jazz 1998",
    "dentist 2023",
    "doing because",
]


def test_terms_stem_fold_and_drop_stop_words() -> None:
    assert terms("Doing the running, because Café!") == ["run", "becaus", "cafe"]
    assert terms("x" * 41 + " ok") == ["ok"]


def test_copy_scores_equal_lancedb_full_text(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path / "d"), embedder=FakeEmbedder())
    mem.add([{"role": "user", "content": s} for s in SENTENCES], user_id="u")
    mem.add("A park in another scope, with records and jazz.", user_id="other")
    mem.flush()
    scope = {"user_id": "u", "agent_id": None, "run_id": None}
    for query in QUERIES:
        ours = mem.storage.vectors.cached_text_search(query, 20, scope, include_superseded=False)
        assert ours is not None
        theirs = mem.storage.vectors.text_search(query, "user_id = 'u'", 20)
        assert [round(r["_score"], 3) for r in ours] == [round(r["_score"], 3) for r in theirs], query
        assert {r["id"] for r in ours} == {r["id"] for r in theirs}, query
    mem.close()


def reference_ceiling(query: str, allowed: np.ndarray) -> float:
    """The ceiling as it was computed apart from ``search``: each query term at its idf among the
    allowed sentences (a term they lack at df 0), summed term by term in query order."""
    docs = int(allowed.sum())
    held = [set(terms(s)) for s, ok in zip(SENTENCES, allowed, strict=True) if ok]
    total = 0.0
    for term in terms(query):
        df = sum(term in h for h in held)
        total += float(np.log1p((docs - df + 0.5) / (df + 0.5))) * (K1 + 1.0)
    return total


def test_search_returns_the_ceiling_of_the_allowed_rows() -> None:
    index = TextIndex()
    for pos, text in enumerate(SENTENCES):
        index.add(pos, text)
    everything = np.ones(len(SENTENCES), dtype=bool)
    some = np.array([i % 3 != 0 for i in range(len(SENTENCES))])
    for allowed in (everything, some):
        for query in [*QUERIES, "park park zebra", "jazz unknownword jazz", "Caroline"]:
            positions, scores, ceiling = index.search(query, allowed, 20)
            expected = reference_ceiling(query, allowed) if len(positions) else 0.0
            assert ceiling == expected, query  # the same sum, bit for bit
            assert all(0.0 < s <= ceiling for s in scores), query
    assert index.search("zebra", everything, 20)[2] == 0.0  # no hit: no ceiling
