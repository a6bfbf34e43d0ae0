"""The ANN switch: exact below the size setting, IVF lists past it, scopes always exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import FakeEmbedder, make_settings

from mem0_mcp.engine.memory import Memory
from mem0_mcp.stores.ivf import IvfIndex, list_count, train_centroids

THRESHOLD = 256  # the smallest the setting allows


def _fill(mem: Memory, count: int, user: str, start: int = 0) -> None:
    words = ["alpha", "bravo", "carbon", "delta", "echo", "fjord", "gamma", "harbor", "indigo", "jade"]
    msgs = [
        {"role": "user", "content": f"{words[i % 10]} {words[(i * 7) % 10]} item{i % 97} note {i}"}
        for i in range(start, start + count)
    ]
    for chunk in range(0, len(msgs), 200):
        mem.add(msgs[chunk : chunk + 200], user_id=user)


def _ids(mem: Memory, query: str, user: str) -> list[tuple[str, float]]:
    return [(h.memory, round(h.score or 0.0, 5)) for h in mem.search(query, user_id=user, limit=20).results]


def _same(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> bool:
    """The same scores for the same memories, and the same best scores. The fake embedder gives
    many rows one cosine: rows tied in the ranking may come in another order, and ties at the
    end of the page may cut either way (ranked by the fused score, reported by relevance: the
    two orders differ), so the pages may hold different members of a tie."""
    sa, sb = dict(a), dict(b)
    common = sa.keys() & sb.keys()
    best = sorted((x[1] for x in a), reverse=True)[:3] == sorted((x[1] for x in b), reverse=True)[:3]
    return len(a) == len(b) and best and all(sa[m] == sb[m] for m in common) and len(common) >= len(a) // 2


QUERIES = ("alpha item3", "gamma harbor note", "jade fjord item42", "echo 17")


def test_below_the_threshold_there_is_no_index(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path / "d", ann_index_threshold=THRESHOLD), embedder=FakeEmbedder())
    _fill(mem, THRESHOLD - 50, "u")
    mem.search("alpha", user_id="u")
    assert mem.storage.vectors.wait_for_index(30)
    assert not mem.stats().ann_index
    mem.close()


def _pair(tmp_path: Path, nprobe: int) -> tuple[Memory, Memory]:
    """Two stores on one embedder: one with the ANN switch at THRESHOLD, one always exact."""
    emb = FakeEmbedder()
    ann_settings = make_settings(tmp_path / "a", ann_index_threshold=THRESHOLD, ann_nprobe=nprobe)
    ann = Memory(ann_settings, embedder=emb)
    exact = Memory(make_settings(tmp_path / "b", ann_index_threshold=10**9), embedder=emb)
    return ann, exact


def test_past_the_threshold_the_index_exists_and_probing_all_lists_equals_exact(tmp_path: Path) -> None:
    ann, exact = _pair(tmp_path, nprobe=4096)
    for mem in (ann, exact):
        _fill(mem, 3 * THRESHOLD, "u")
    ann.search("alpha", user_id="u")
    assert ann.storage.vectors.wait_for_index(60)
    assert ann.stats().ann_index
    assert not exact.stats().ann_index
    for query in QUERIES:
        assert _same(_ids(ann, query, "u"), _ids(exact, query, "u"))
    # Rows written after the build are assigned to lists and found.
    for mem in (ann, exact):
        _fill(mem, 50, "u", start=10_000)
    for query in ("alpha item3 note 10003", "jade 10049"):
        assert _same(_ids(ann, query, "u"), _ids(exact, query, "u"))
    ann.close()
    exact.close()


def test_scopes_stay_exact_past_the_threshold(tmp_path: Path) -> None:
    ann, exact = _pair(tmp_path, nprobe=1)
    for mem in (ann, exact):
        _fill(mem, 3 * THRESHOLD, "big")
        _fill(mem, 60, "small", start=5_000)
    ann.search("alpha", user_id="big")
    assert ann.storage.vectors.wait_for_index(60) and ann.stats().ann_index
    for query in QUERIES:
        # Even reading one list, a scope smaller than the threshold is scanned in full...
        hits = ann.search(query, user_id="small", limit=20).results
        assert {h.user_id for h in hits} == {"small"}
        assert _same(_ids(ann, query, "small"), _ids(exact, query, "small"))
        # ...and a large scope still gets a full page of its own rows only.
        big = ann.search(query, user_id="big", limit=20).results
        assert len(big) == 20 and {h.user_id for h in big} == {"big"}
    ann.close()
    exact.close()


def test_related_reads_every_row_where_a_search_reads_the_lists(tmp_path: Path) -> None:
    """An add's `related` must show the memory the new one may replace, which is often far from
    the nearest lists: past the threshold it reads every row (through the int8 rows)."""
    emb = FakeEmbedder()
    settings = make_settings(
        tmp_path / "a", ann_index_threshold=THRESHOLD, ann_nprobe=1, related_threshold=0.0
    )
    mem = Memory(settings, embedder=emb)
    _fill(mem, 3 * THRESHOLD, "u")
    mem.search("alpha", user_id="u")
    assert mem.storage.vectors.wait_for_index(60) and mem.stats().ann_index
    scope = {"user_id": "u", "agent_id": None, "run_id": None}
    lists_missed = 0
    for text in ["alpha jade harbor", "carbon fjord item5 new", "echo gamma item61 note", "indigo x"]:
        mem.flush()
        q = emb.embed([text])[0]
        exact = mem.storage.vectors.dense_search(q, 3, scope, include_superseded=False, exact=True)
        lists = mem.storage.vectors.dense_search(q, 3, scope, include_superseded=False)
        assert exact is not None and lists is not None
        lists_missed += sorted(h["_distance"] for h in lists) != sorted(h["_distance"] for h in exact)
        related = mem.add(text, user_id="u").related
        # The same scores as every row's best 3 (the fake embedder ties rows: scores, not ids).
        assert [r.score for r in related] == [round(1 - h["_distance"], 4) for h in exact]
    assert lists_missed  # one list alone misses some of them: the case is exercised
    mem.close()


def test_past_the_int8_rows_limit_related_reads_the_lists(tmp_path: Path) -> None:
    """Past 8x the threshold there are no int8 rows: every row would be a float32 scan of the
    whole copy per add, so `related` reads the lists as a search does."""
    settings = make_settings(tmp_path / "a", ann_index_threshold=THRESHOLD, ann_nprobe=1)
    mem = Memory(settings, embedder=FakeEmbedder())
    _fill(mem, 8 * THRESHOLD + 300, "u")
    mem.search("alpha", user_id="u")
    assert mem.storage.vectors.wait_for_index(60)
    copy = mem.storage.vectors.copy
    assert copy is not None and copy.ann_ready
    scope = {"user_id": "u", "agent_id": None, "run_id": None}
    lists_missed = 0
    # Several queries: which rows the one list holds depends on when the index trained (the
    # journal's moves), and the fake embedder ties rows, so one query alone may meet the exact
    # top 3 by chance.
    for text in ["alpha jade harbor", "carbon fjord item5 new", "echo gamma item61 note", "indigo x"]:
        q = FakeEmbedder().embed([text])[0]

        def found(exact: bool | None, q: np.ndarray = q) -> list[tuple[str, float]]:
            return [(h["id"], h["_distance"]) for h in copy.search(q, 3, scope, False, ("id",), exact=exact)]

        assert found(None) == found(False)
        lists_missed += sorted(d for _, d in found(False)) != sorted(d for _, d in found(True))
    assert lists_missed  # the one list misses some of them: the case is exercised
    mem.close()


def test_ivf_recall_on_clustered_vectors() -> None:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((200, 48)).astype(np.float32)
    noise = rng.standard_normal((20_000, 48)).astype(np.float32)
    vectors = centres[rng.integers(0, 200, 20_000)] + 0.35 * noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    centroids = train_centroids(vectors, list_count(len(vectors)))
    index = IvfIndex(centroids, vectors[:15_000], 15_000)
    index.extend(vectors[15_000:])  # rows added after training are found as well
    everyone = np.ones(len(vectors), dtype=bool)
    queries = vectors[rng.integers(0, len(vectors), 50)]
    recall = []
    for q in queries:
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        positions, sims = index.search(q, 16, everyone)
        assert np.allclose(sims, vectors[positions] @ q, atol=1e-5)  # exact scores
        found = set(positions[np.argsort(-sims)[:10]].tolist())
        recall.append(len(exact & found) / 10)
    assert np.mean(recall) >= 0.95
    # The scope mask is applied inside the lists.
    half = np.arange(len(vectors)) % 2 == 0
    positions, _ = index.search(queries[0], 16, half)
    assert len(positions) and (positions % 2 == 0).all()
