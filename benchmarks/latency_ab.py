#!/usr/bin/env python3
"""Add and search p50 of two versions of the engine, interleaved one call at a time.

Each side runs in its own process from its own checkout (a commit, made a temporary git
worktree, or the working tree), on its own store of N LoCoMo turns in one scope (as
benchmarks/latency.py builds it). Then the driver asks the two in turn: an add on one side, the
same add on the other, and so on (which side goes first alternates), then the searches the same
way. On a shared 2-core machine the speed of the box drifts by 20-30% within minutes; running
the two versions minutes apart (latency.py once for each) compares the drift as much as the code.
Interleaved, each pair of calls meets the same machine, and the ratio of the medians is the
code's.

    python benchmarks/latency_ab.py --before ee791cc [--after WORKTREE|COMMIT] [--size 10000]

Prints each side's p50 and the after/before ratios (with the spread of the ratio over the
rounds) and adds the run to the runs of a JSON file (benchmarks/results/latency_interleaved_10k.json
by default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODEL_CACHE = ROOT / ".cache" / "models"


# ---------------------------------------------------------------------------------- worker side
def worker(texts_file: str, size: int) -> None:
    """Serve ``add i`` / ``search i`` / ``quit`` on stdin with the milliseconds each took.

    Imports mem0_mcp from PYTHONPATH (the checkout under test), nothing else of this repo."""
    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory

    data = json.loads(Path(texts_file).read_text())
    texts, questions = data["texts"], data["questions"]
    workdir = Path(tempfile.mkdtemp(prefix="mem0mcp-ab-"))
    out = sys.stdout
    sys.stdout = sys.stderr  # the protocol is ours alone
    try:
        mem = Memory(Settings(data_dir=workdir, llm_provider="none"))  # type: ignore[call-arg]
        mem.embedder.embed(["warm up"])
        for start in range(0, size, 500):
            batch = texts[start : min(size, start + 500)]
            mem.add([{"role": "user", "content": t} for t in batch], user_id="u")
        mem.optimize()
        mem.storage.vectors.wait_for_index()
        _reply(out, "ready")
        for line in sys.stdin:
            op, _, arg = line.strip().partition(" ")
            if op == "quit":
                break
            i = int(arg)
            t = time.perf_counter()
            if op == "add":
                mem.add(texts[size + i], user_id="u")
            else:
                mem.search(questions[i % len(questions)], user_id="u", limit=10)
            ms = (time.perf_counter() - t) * 1000
            if op == "add":
                # The add's journal entry moves into the table now, untimed: otherwise this
                # side's background move would run during the other side's next call.
                mem.flush()
            _reply(out, f"{ms:.4f}")
        mem.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _reply(out: IO[str], text: str) -> None:
    out.write(text + "\n")
    out.flush()


# ---------------------------------------------------------------------------------- driver side
class Side:
    """One version under test: a checkout and the worker process serving it."""

    def __init__(self, name: str, checkout: Path, commit: str, texts_file: str, size: int) -> None:
        self.name, self.checkout, self.commit = name, checkout, commit
        env = {
            **os.environ,
            "PYTHONPATH": str(checkout),
            "HF_HUB_OFFLINE": "1",
            # Each version exports the model in its own way (the export format has changed).
            "MEM0_MCP_MODEL_CACHE_DIR": str(MODEL_CACHE if checkout == ROOT else MODEL_CACHE / "ab" / commit),
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", texts_file, "--size", str(size)],
            cwd=checkout,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.times: dict[str, list[float]] = {"add": [], "search": []}

    def read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} ({self.commit}): the worker stopped (see its stderr above)")
        return line.strip()

    def call(self, op: str, i: int, record: bool) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{op} {i}\n")
        self.proc.stdin.flush()
        ms = float(self.read())
        if record:
            self.times[op].append(ms)

    def close(self) -> None:
        """Ask the worker to quit; kill it when it does not (say, still building its store after
        the other side failed)."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def checkout_of(ref: str, scratch: Path, side: str) -> tuple[Path, str]:
    """A directory holding ``ref``: the working tree for "WORKTREE", else a temporary worktree."""
    if ref == "WORKTREE":
        head = _git("rev-parse", "--short", "HEAD")
        return ROOT, head + ("+changes" if _git("status", "--porcelain", "--", "mem0_mcp") else "")
    commit = _git("rev-parse", "--short", ref)
    path = scratch / f"{side}-{commit}"  # both sides may be the same commit (an A/A run)
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), commit], cwd=ROOT, check=True)
    return path, commit


def ratio_summary(before: list[float], after: list[float]) -> dict[str, float]:
    """Medians, their ratio, and the quartiles of the per-round ratio (each round one call of
    each side, back to back)."""
    rounds = sorted(a / b for a, b in zip(after, before, strict=True))
    q = statistics.quantiles(rounds, n=4)
    return {
        "before_p50_ms": round(statistics.median(before), 3),
        "after_p50_ms": round(statistics.median(after), 3),
        "ratio_of_medians": round(statistics.median(after) / statistics.median(before), 3),
        "round_ratio_p25": round(q[0], 3),
        "round_ratio_p50": round(q[1], 3),
        "round_ratio_p75": round(q[2], 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="ee791cc", help="commit (or WORKTREE)")
    p.add_argument("--after", default="WORKTREE", help="commit (or WORKTREE, the default)")
    p.add_argument("--size", type=int, default=10_000, help="memories in the scope")
    p.add_argument("--calls", type=int, default=400, help="timed adds, and timed searches, per side")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="pause after each call (an agent's adds come turns apart; after 20 ms idle every call "
        "here took ~1.7x as long and varied 4x as much)",
    )
    p.add_argument("--out", default=str(RESULTS / "latency_interleaved_10k.json"))
    p.add_argument("--note", default="", help="what this run is (kept with its figures)")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: texts file of a worker
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.size)
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.latency import DATA, corpus, numbered

    texts, questions = corpus(DATA)
    pool = numbered(texts, args.size + args.warmup + args.calls)
    scratch = Path(tempfile.mkdtemp(prefix="mem0mcp-ab-src-"))
    sides: list[Side] = []
    try:
        texts_file = scratch / "texts.json"
        texts_file.write_text(json.dumps({"texts": pool, "questions": questions}))
        for name, ref in (("before", args.before), ("after", args.after)):
            path, commit = checkout_of(ref, scratch, name)
            sides.append(Side(name, path, commit, str(texts_file), args.size))
        t0 = time.perf_counter()
        for side in sides:  # both stores are built at once, one per core
            if side.read() != "ready":
                raise SystemExit(f"{side.name}: unexpected worker output")
        print(f"stores of {args.size} built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        for op in ("add", "search"):
            for i in range(args.warmup + args.calls):
                order = sides if i % 2 == 0 else sides[::-1]
                for side in order:
                    side.call(op, i, record=i >= args.warmup)
                    time.sleep(args.gap_ms / 1000)
        before, after = sides
        result = {
            "what": args.note,
            "load_average": os.getloadavg(),
            "before": before.commit,
            "after": after.commit,
            "calls": args.calls,
            "gap_ms": args.gap_ms,
            "add": ratio_summary(before.times["add"], after.times["add"]),
            "search": ratio_summary(before.times["search"], after.times["search"]),
        }
    finally:
        for side in sides:
            if side.proc.poll() is None:
                side.close()
        for side in sides:
            if side.checkout != ROOT:
                subprocess.run(["git", "worktree", "remove", "--force", str(side.checkout)], cwd=ROOT)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'':8} {'before':>8} {'after':>8} {'ratio':>6}   per-round ratio p25 / p50 / p75")
    print(f"{'':8} {result['before']:>8} {result['after']:>8}")
    for op in ("add", "search"):
        r = result[op]
        print(
            f"{op + ' p50':8} {r['before_p50_ms']:>8.3f} {r['after_p50_ms']:>8.3f} "
            f"{r['ratio_of_medians']:>6.3f}   {r['round_ratio_p25']:.3f} / {r['round_ratio_p50']:.3f} / "
            f"{r['round_ratio_p75']:.3f}"
        )
    record(Path(args.out), result, args.size)
    print(f"\nadded to {args.out}")


def record(out: Path, result: dict, size: int) -> None:
    """Append ``result`` to the runs of ``out`` (made when missing): runs of the same code days
    apart differ by the machine's state, so each is kept beside the others, not over them."""
    data = json.loads(out.read_text()) if out.exists() else {}
    if "runs" not in data:
        # A file of one run (as this script wrote before) keeps it as the first run.
        data = {
            "what": "benchmarks/latency_ab.py: two versions in their own processes, each on its own "
            f"store of {size} LoCoMo turns, called in turn one add (then one search) at a time, "
            "each add's journal moved into the table untimed before the next call",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "runs": [data] if data else [],
        }
    data["runs"].append(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
