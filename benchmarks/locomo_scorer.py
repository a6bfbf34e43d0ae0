"""Turn-level evidence recall (frac@k, all@k, any@k, nDCG@k) from raw rankings, as the data README defines it.

Rankings are ``{sample_id: {qa_index: [dia_id, ...]}}``, best first; qa_index may be an int or
its string form (JSON keys). Context cost is estimated as len(text) / 4 tokens, the usual
rule of thumb for English with GPT-style tokenizers; it needs no tokenizer and is stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from benchmarks.locomo_data import CATEGORIES, Conversation, Question

KS = (5, 10, 20)
METRICS = ("frac", "all", "any", "ndcg")

Rankings = Mapping[str, Mapping[int | str, Sequence[str | None]]]


def estimate_tokens(text: str) -> float:
    return len(text) / 4


def question_scores(evidence: Iterable[str], ranking: Sequence[str | None], k: int) -> dict[str, float]:
    wanted = set(evidence)
    if not wanted:
        raise ValueError("empty evidence: skip the question before scoring")
    top = list(ranking[:k])
    found = wanted.intersection(x for x in top if x is not None)
    # A turn counted once: a result list repeating an id must not earn gain twice.
    dcg, seen = 0.0, set()
    for i, dia in enumerate(top):
        if dia in wanted and dia not in seen:
            seen.add(dia)
            dcg += 1.0 / math.log2(i + 2)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(wanted), k)))
    return {
        "frac": len(found) / len(wanted),
        "all": float(found == wanted),
        "any": float(bool(found)),
        "ndcg": dcg / idcg,
    }


def _lookup(rankings: Rankings, q: Question) -> Sequence[str | None]:
    per_sample = rankings.get(q.sample_id) or {}
    got = per_sample.get(q.qa_index)
    if got is None:
        got = per_sample.get(str(q.qa_index))
    return got or []


def score(
    conversations: Sequence[Conversation],
    rankings: Rankings,
    *,
    ks: Sequence[int] = KS,
    context_tokens: Callable[[Question, int], float] | None = None,
) -> dict:
    """Averages in percent per category and overall; tokens (if given a counter) per k."""
    sums: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    token_sums = dict.fromkeys(ks, 0.0)
    n = 0
    for conv in conversations:
        for q in conv.questions:
            ranking = _lookup(rankings, q)
            n += 1
            for group in ("overall", str(q.category)):
                counts[group] = counts.get(group, 0) + 1
                bucket = sums.setdefault(group, {})
                for k in ks:
                    for name, value in question_scores(q.evidence, ranking, k).items():
                        key = f"{name}@{k}"
                        bucket[key] = bucket.get(key, 0.0) + value
            if context_tokens is not None:
                for k in ks:
                    token_sums[k] += context_tokens(q, k)
    out: dict = {"questions": n, "skipped": sum(len(c.skipped) for c in conversations), "by_category": {}}
    for group in ["overall", *(str(c) for c in CATEGORIES)]:
        if group not in counts:
            continue
        avg = {key: 100.0 * v / counts[group] for key, v in sums[group].items()}
        entry = {"n": counts[group], **avg}
        if group == "overall":
            out["overall"] = entry
        else:
            out["by_category"][group] = {"name": CATEGORIES[int(group)], **entry}
    if context_tokens is not None and n:
        out["avg_context_tokens"] = {str(k): token_sums[k] / n for k in ks}
    return out


def text_token_counter(
    conversations: Sequence[Conversation],
    rankings: Rankings,
    texts: Mapping[str, Mapping[str, str]] | None = None,
) -> Callable[[Question, int], float]:
    """Tokens of the first k results, each costed by its turn's natural text unless texts say otherwise."""
    if texts is None:
        texts = {c.sample_id: {t.dia_id: t.natural_text for t in c.turns()} for c in conversations}

    def count(q: Question, k: int) -> float:
        per = texts.get(q.sample_id, {})
        return sum(estimate_tokens(per.get(d) or "") for d in _lookup(rankings, q)[:k] if d)

    return count


def format_table(results: Mapping[str, dict], *, ks: Sequence[int] = KS) -> str:
    """One row per system: overall frac/all/any/nDCG at each k, then frac@10 per category."""
    cols = [f"{m}@{k}" for m in METRICS for k in ks]
    cat_cols = [f"c{c} f@10" for c in CATEGORIES]
    tok_cols = [f"tok@{k}" for k in ks]
    width = max(12, *(len(name) for name in results))
    header = f"{'system':<{width}} " + " ".join(f"{c:>8}" for c in cols + cat_cols + tok_cols)
    lines = [header, "-" * len(header)]
    for name, res in results.items():
        overall = res["overall"]
        row = [overall.get(c, float("nan")) for c in cols]
        row += [res["by_category"].get(str(c), {}).get("frac@10", float("nan")) for c in CATEGORIES]
        toks = res.get("avg_context_tokens", {})
        row += [toks.get(str(k), float("nan")) for k in ks]
        lines.append(f"{name:<{width}} " + " ".join(f"{v:8.1f}" for v in row))
    return "\n".join(lines)
