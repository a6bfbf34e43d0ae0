"""What a memory row holds and how it is indexed and embedded: the one owner of that rule.

Add, update, reindex and the LLM pipeline's writes all build rows here, so a row's full-text
input and vector depend only on what the row stores: its text, its speaker's name and the
texts of the messages next to it in its add (``neighbours``). Reindex therefore rebuilds every
vector exactly as the add made it.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import numpy as np

from mem0_mcp.models import MemoryItem, Scope

# In "mixed" context vectors, a message counts three times as much as each neighbour.
OWN_WEIGHT = 3.0

ContextMode = Literal["mixed", "joint"]
EmbedFn = Callable[[Sequence[str]], np.ndarray]


class MemoryRow(TypedDict):
    """One row of the memory table (the vector travels beside it)."""

    id: str
    memory: str
    hash: str
    search_text: str
    context: str | None
    neighbours: list[str] | None
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    actor_id: str | None
    role: str | None
    name: str | None
    memory_type: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    event_at: str | None
    superseded_at: str | None
    superseded_by: str | None


class HistoryRecord(TypedDict):
    """One audit event as the history store takes it."""

    memory_id: str
    old_memory: str | None
    new_memory: str | None
    event: str
    created_at: str
    actor_id: str | None
    role: str | None
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    is_deleted: bool
    source: str
    snapshot: dict[str, Any] | None


# Who made a change: the LLM memory manager, an agent's tool call, a person (CLI), other code.
ChangeSource = Literal["llm", "agent", "person", "api"]


# Punctuation, separators and control characters count as spaces in a duplicate key.
_BLANK = ("P", "Z", "C")
# The same rule for ASCII (NFKC leaves it as it is, casefold is lower), as one translate: the
# loop over characters cost each add ~0.03 ms, and most texts are ASCII.
_ASCII_BLANKS = {c: " " for c in range(128) if unicodedata.category(chr(c)).startswith(_BLANK)}


def dedup_key(text: str) -> str:
    """What two texts must share to be the same memory: Unicode form, case, whitespace and
    punctuation do not count ("prefers dark roast." is "Prefers  dark roast")."""
    if text.isascii():
        folded = text.lower()
        kept = folded.translate(_ASCII_BLANKS)
    else:
        folded = unicodedata.normalize("NFKC", text).casefold()
        kept = "".join(" " if unicodedata.category(ch).startswith(_BLANK) else ch for ch in folded)
    # A text of punctuation alone keeps its characters: "!!!" is not "?".
    return " ".join(kept.split()) or " ".join(folded.split())


def text_hash(text: str) -> str:
    """The duplicate key of a text, hashed (the ``hash`` column)."""
    return hashlib.md5(dedup_key(text).encode("utf-8")).hexdigest()


def index_text(text: str, name: str | None) -> str:
    """What the indexes see of a message: its speaker's name before the text."""
    return f"{name}: {text}" if name else text


def search_text(own: str, context: str | None, outer: str | None = None) -> str:
    """Full-text input: the message, its neighbours (``context``), then the next ones out.

    With neighbours, the message's own words are written twice, the usual field boost by
    repetition: BM25 then ranks a message by its own words first, and by its neighbours'
    words after. The wider window (two messages each side) plus the boost took LoCoMo
    frac@10 from 72.9 to 76.0 over one neighbour each side.
    """
    if not context:
        return own
    return "\n".join(p for p in (own, own, context, outer) if p)


def outer_context(row: Mapping[str, Any]) -> str | None:
    """The part of a row's full-text input beyond its message and nearest neighbours."""
    head = search_text(index_text(row["memory"], row.get("name")), row.get("context"))
    text = row.get("search_text") or ""
    return (text[len(head) + 1 :] or None) if text.startswith(head + "\n") else None


@dataclass(frozen=True)
class EmbedInput:
    """What decides a row's vector: its index text and its neighbours' (at add time)."""

    own: str
    neighbours: tuple[str, ...] = ()

    @classmethod
    def of_row(cls, row: Mapping[str, Any], *, text: str | None = None) -> EmbedInput:
        """The input of a stored row; ``text`` replaces its memory text (an update).

        Rows written before the ``neighbours`` column existed keep their neighbours only in
        ``context``, one per line: a neighbour that itself spans lines is then split.
        """
        own = index_text(row["memory"] if text is None else text, row.get("name"))
        stored = row.get("neighbours")
        if stored is not None:
            return cls(own, tuple(stored))
        context = row.get("context")
        return cls(own, tuple(context.split("\n")) if context else ())

    @property
    def context(self) -> str | None:
        return "\n".join(self.neighbours) or None


def embed_inputs(inputs: Sequence[EmbedInput], embed: EmbedFn, mode: ContextMode) -> np.ndarray:
    """The vectors of rows, unit length, one per input.

    ``mixed`` embeds every distinct text once and adds the neighbours' vectors to the row's own
    at 1/OWN_WEIGHT of its weight: an approximation of embedding the message with its neighbours
    that costs one embedding per message of an add instead of three windows. LoCoMo frac@10 with
    the message at 1x / 2x / 3x its neighbours' weight: 79.6 / 80.9 / 81.7; ``joint`` (the
    window as one text, a wider window dilutes a small model's vector): 81.0.
    """
    if not inputs:
        return np.zeros((0, 0), dtype=np.float32)
    if mode == "joint":
        return np.asarray(
            embed([f"{i.own}\n{i.context}" if i.context else i.own for i in inputs]), dtype=np.float32
        )
    slot: dict[str, int] = {}
    for item in inputs:
        for text in (item.own, *item.neighbours):
            slot.setdefault(text, len(slot))
    vectors = np.asarray(embed(list(slot)), dtype=np.float32)
    if not any(item.neighbours for item in inputs):
        return vectors[[slot[i.own] for i in inputs]]
    mixed = np.empty((len(inputs), vectors.shape[1]), dtype=np.float32)
    for k, item in enumerate(inputs):
        v = vectors[slot[item.own]] * OWN_WEIGHT
        for text in item.neighbours:
            v = v + vectors[slot[text]]
        mixed[k] = v
    norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    return (mixed / np.maximum(norms, 1e-12)).astype(np.float32)


def conversation_inputs(index_texts: Sequence[str]) -> list[EmbedInput]:
    """The inputs of the messages of one add: each one's neighbours are the messages beside it.

    Neighbouring messages of the same add give a short turn its meaning ("Yes, since 2019"
    answers the question before it).
    """
    n = len(index_texts)
    return [
        EmbedInput(index_texts[i], tuple(index_texts[j] for j in (i - 1, i + 1) if 0 <= j < n))
        for i in range(n)
    ]


def outer_of(index_texts: Sequence[str], i: int) -> str | None:
    """The messages two places from message ``i`` of an add: the outer ring of its full text."""
    n = len(index_texts)
    return "\n".join(index_texts[j] for j in (i - 2, i + 2) if 0 <= j < n) or None


def new_row(
    text: str,
    scope: Scope,
    *,
    now: str,
    inputs: EmbedInput | None = None,
    outer: str | None = None,
    actor_id: str | None,
    role: str | None,
    name: str | None,
    memory_type: str | None,
    metadata: dict[str, Any],
    event_at: str | None,
) -> MemoryRow:
    """A new live row; ``inputs`` are its index text and neighbours (default: the text alone)."""
    inputs = inputs or EmbedInput(index_text(text, name))
    return MemoryRow(
        id=str(uuid.uuid4()),
        memory=text,
        hash=text_hash(text),
        search_text=search_text(inputs.own, inputs.context, outer),
        context=inputs.context,
        neighbours=list(inputs.neighbours) or None,
        user_id=scope.user_id,
        agent_id=scope.agent_id,
        run_id=scope.run_id,
        actor_id=actor_id,
        role=role,
        name=name,
        memory_type=memory_type,
        metadata=metadata,
        created_at=now,
        updated_at=now,
        event_at=event_at,
        superseded_at=None,
        superseded_by=None,
    )


def text_change(row: Mapping[str, Any], text: str) -> tuple[dict[str, Any], EmbedInput]:
    """The index fields of a row whose text becomes ``text``, and the input of its new vector."""
    inputs = EmbedInput.of_row(row, text=text)
    values = {
        "memory": text,
        "hash": text_hash(text),
        "search_text": search_text(inputs.own, row.get("context"), outer_context(row)),
    }
    return values, inputs


def standalone_text(row: Mapping[str, Any], text: str) -> tuple[dict[str, Any], EmbedInput]:
    """The index fields of a row rewritten by the memory manager: a fact that stands alone, no
    longer read with the messages that were beside it."""
    inputs = EmbedInput(index_text(text, row.get("name")))
    values = {
        "memory": text,
        "hash": text_hash(text),
        "search_text": search_text(inputs.own, None),
        "context": None,
        "neighbours": None,
    }
    return values, inputs


def history_record(
    row: Mapping[str, Any],
    event: str,
    old: str | None,
    new: str | None,
    now: str,
    source: ChangeSource,
    before: Mapping[str, Any] | None = None,
) -> HistoryRecord:
    """The audit event of a change to ``row``; ``before`` is the row as it was, kept so that
    restore can put it back (pass it for every change but an ADD)."""
    return HistoryRecord(
        memory_id=row["id"],
        old_memory=old,
        new_memory=new,
        event=event,
        created_at=now,
        actor_id=row.get("actor_id"),
        role=row.get("role"),
        user_id=row.get("user_id"),
        agent_id=row.get("agent_id"),
        run_id=row.get("run_id"),
        is_deleted=event == "DELETE",
        source=source,
        snapshot=dict(before) if before is not None else None,
    )


def row_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's metadata as an object: the table keeps it as JSON text, a write takes a dict."""
    meta = row.get("metadata")
    if isinstance(meta, str):
        return json.loads(meta) if meta else {}
    return dict(meta or {})


def to_item(row: Mapping[str, Any], score: float | None = None) -> MemoryItem:
    """The public form of a row."""
    meta = row_metadata(row)
    return MemoryItem(
        id=row["id"],
        memory=row["memory"],
        hash=row["hash"],
        user_id=row.get("user_id"),
        agent_id=row.get("agent_id"),
        run_id=row.get("run_id"),
        actor_id=row.get("actor_id"),
        role=row.get("role"),
        name=row.get("name"),
        memory_type=row.get("memory_type"),
        metadata=meta,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        event_at=row.get("event_at"),
        superseded_at=row.get("superseded_at"),
        superseded_by=row.get("superseded_by"),
        score=None if score is None else round(float(score), 6),
    )


def in_scope(row: Mapping[str, Any], scope: Scope | None) -> bool:
    """Whether a row (or a history entry) belongs to ``scope`` (None: any)."""
    if scope is None:
        return True
    return all(row.get(k) == v for k, v in scope.as_dict().items())
