"""benchmarks/locomo.py end to end on a tiny LoCoMo-format file written here (schema: the data README).

The fast test runs the script's ``main`` in this process with the fake embedder; the slow one runs
``python -m benchmarks.locomo`` as a fresh machine would, with the default settings (the ONNX
export made into the temporary data dir), which failed before issue #12 item 7 was fixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from benchmarks import locomo
from tests.support.engine import FakeEmbedder

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["pottery", "marathon", "violin", "sourdough", "kayaking", "chess", "orchids", "telescope"]


def conversation(sample_id: str, speakers: tuple[str, str], sessions: int, turns: int) -> dict[str, Any]:
    """One LoCoMo conversation: ``sessions`` sessions of ``turns`` turns, and its questions."""
    conv: dict[str, Any] = {"speaker_a": speakers[0], "speaker_b": speakers[1]}
    for n in range(1, sessions + 1):
        conv[f"session_{n}_date_time"] = f"1:56 pm on {n} May, 2023"
        session = []
        for i in range(1, turns + 1):
            topic = TOPICS[(n * turns + i) % len(TOPICS)]
            turn = {
                "speaker": speakers[i % 2],
                "dia_id": f"D{n}:{i}",
                "text": f"Session {n} turn {i}: I spent the weekend on {topic} with my cousin number {i}.",
            }
            if i == 2:
                turn["img_url"] = ["https://example.invalid/photo.jpg"]
                turn["blip_caption"] = f"a photo of {topic} gear"
            session.append(turn)
        conv[f"session_{n}"] = session
    # A date without its session: the README says to ignore it.
    conv[f"session_{sessions + 1}_date_time"] = "9:00 am on 1 June, 2023"
    qa = [
        {
            "question": "What did I do on the weekend with cousin number 3?",
            "answer": "x",
            "evidence": ["D1:3"],
            "category": 4,
        },
        {
            "question": "Which gear was in the photo?",
            "answer": "x",
            "evidence": ["D1:2; D2:2"],
            "category": 1,
        },
        {"question": "When was session 2?", "answer": "x", "evidence": ["D:2:1"], "category": 2},
        {"question": "What about cousin number 5?", "answer": "x", "evidence": ["D2:05"], "category": 3},
        {"question": "Nothing to find here", "answer": "x", "evidence": ["D99:1"], "category": 4},
        {"question": "Adversarial?", "adversarial_answer": "no", "evidence": ["D1:1"], "category": 5},
    ]
    return {"sample_id": sample_id, "conversation": conv, "qa": qa, "event_summary": {}, "observation": {}}


def write_tiny_locomo(path: Path, *, turns: int = 6) -> Path:
    data = [
        conversation("conv-a", ("Ana", "Ben"), sessions=2, turns=turns),
        conversation("conv-b", ("Caro", "Dan"), sessions=2, turns=turns),
    ]
    path.write_text(json.dumps(data))
    return path


def check_output(out: Path, rankings: Path) -> dict[str, Any]:
    report = json.loads(out.read_text())
    assert set(report["systems"]) == {"bm25", "minilm", "rrf", "mem0-mcp"}
    ours = report["systems"]["mem0-mcp"]
    # 4 scored questions per conversation; the one whose evidence names no turn is skipped.
    assert ours["questions"] == 8 and ours["skipped"] == 2
    ranked = json.loads(rankings.read_text())
    assert set(ranked) == {"conv-a", "conv-b"}
    assert all(ids for per_question in ranked.values() for ids in per_question.values())
    return report


def test_locomo_runs_end_to_end_with_the_fake_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_tiny_locomo(tmp_path / "tiny_locomo.json")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out, rankings = tmp_path / "out.json", tmp_path / "rankings.json"
    argv = [str(data), "--out", str(out), "--rankings-out", str(rankings)]
    assert locomo.main(argv, embedder=FakeEmbedder()) == 0
    report = check_output(out, rankings)
    assert report["embedder"] == "FakeEmbedder"
    assert report["turns"] == 24
    assert list(scratch.iterdir()) == []  # the temporary data dir is removed at the end


@pytest.mark.slow
def test_locomo_runs_with_default_settings_on_a_fresh_machine(tmp_path: Path) -> None:
    # 2 x 2 x 60 turns: the baselines embed them in one call of more than PARALLEL_MIN_CHUNKS
    # chunks, which opens the parallel sessions after the engine's run.
    data = write_tiny_locomo(tmp_path / "tiny_locomo.json", turns=60)
    out, rankings = tmp_path / "out.json", tmp_path / "rankings.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.locomo",
            str(data),
            "--out",
            str(out),
            "--rankings-out",
            str(rankings),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = check_output(out, rankings)
    assert report["embedder"] == "OnnxEmbedder"
    assert report["turns"] == 240
