"""LoCoMo-format data: conversations, turns, questions, and the evidence cleaning of the data README.

The file is read where it lives (../shared/data/locomo_dev.json); it is never copied into the repo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}

_SESSION = re.compile(r"^session_(\d+)$")
# "D:11:26" (stray colon) and "D30:05" (leading zero) both name a real turn once normalized.
_DIA_ID = re.compile(r"^D:?(\d+):(\d+)$")
_SPLIT = re.compile(r"[;,\s]+")


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str
    session: int
    date: datetime | None
    caption: str | None = None

    @property
    def natural_text(self) -> str:
        """How the LoCoMo authors index a turn (and how the mem0 peer script does)."""
        return turn_text(self.speaker, self.text, self.caption)


@dataclass(frozen=True)
class Session:
    number: int
    date: datetime | None
    date_text: str | None
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Question:
    sample_id: str
    qa_index: int
    question: str
    category: int
    evidence: tuple[str, ...]


@dataclass
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    sessions: list[Session]
    questions: list[Question] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    def turns(self) -> Iterator[Turn]:
        for session in self.sessions:
            yield from session.turns

    def turn_ids(self) -> set[str]:
        return {t.dia_id for t in self.turns()}


def turn_text(speaker: str, text: str, caption: str | None = None) -> str:
    out = f'{speaker} said, "{text}"'
    if caption:
        out += f" and shared {caption}"
    return out


def parse_session_date(text: str | None) -> datetime | None:
    """'1:56 pm on 8 May, 2023' -> aware datetime; the data carries no zone, so UTC is assumed."""
    if not text:
        return None
    cleaned = " ".join(text.replace(",", ", ").split())
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(cleaned, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"unparseable session date: {text!r}")


def normalize_dia_id(raw: str) -> str | None:
    m = _DIA_ID.match(raw.strip())
    if not m:
        return None
    return f"D{int(m.group(1))}:{int(m.group(2))}"


def clean_evidence(raw: Iterable[str], valid: set[str]) -> list[str]:
    """Split multi-id strings, repair known malformations, drop ids naming no turn; order kept, no repeats."""
    out: list[str] = []
    for entry in raw:
        for piece in _SPLIT.split(str(entry)):
            if not piece:
                continue
            dia = normalize_dia_id(piece)
            if dia is not None and dia in valid and dia not in out:
                out.append(dia)
    return out


def parse_conversation(sample: dict, categories: Iterable[int] = CATEGORIES) -> Conversation:
    conv = sample["conversation"]
    numbers = sorted(int(m.group(1)) for k in conv for m in [_SESSION.match(k)] if m)
    sessions = []
    for n in numbers:
        date_text = conv.get(f"session_{n}_date_time")
        date = parse_session_date(date_text)
        turns = tuple(
            Turn(
                dia_id=t["dia_id"],
                speaker=t["speaker"],
                text=t.get("text", ""),
                session=n,
                date=date,
                caption=t.get("blip_caption") or None,
            )
            for t in conv[f"session_{n}"]
        )
        sessions.append(Session(n, date, date_text, turns))
    out = Conversation(sample["sample_id"], (conv.get("speaker_a", ""), conv.get("speaker_b", "")), sessions)
    valid = out.turn_ids()
    wanted = set(categories)
    for i, qa in enumerate(sample.get("qa", [])):
        category = qa.get("category")
        if category not in wanted:
            continue
        evidence = clean_evidence(qa.get("evidence") or [], valid)
        if not evidence:
            out.skipped.append(i)
            continue
        out.questions.append(Question(out.sample_id, i, qa["question"], int(category), tuple(evidence)))
    return out


def load(path: str | Path, categories: Iterable[int] = CATEGORIES) -> list[Conversation]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return [parse_conversation(sample, categories) for sample in data]
