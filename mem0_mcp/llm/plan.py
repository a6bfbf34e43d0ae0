"""What the planner works on and hands back: stored neighbours in, a Plan of actions out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mem0_mcp.models import Usage

EventName = Literal["ADD", "UPDATE", "DELETE", "NONE"]
EVENTS: tuple[EventName, ...] = ("ADD", "UPDATE", "DELETE", "NONE")


@dataclass
class Neighbour:
    """A stored memory of the add's scope near a fact; ``similarity`` is the cosine."""

    id: str
    memory: str
    similarity: float


@dataclass
class Action:
    """One change for the engine to apply.

    ADD writes ``text``; UPDATE rewrites memory ``memory_id`` (was ``previous``) to ``text``;
    DELETE removes ``memory_id``, replaced by the action at index ``superseded_by`` if any; NONE
    names the stored memory that already says it. ``vector`` is the embedding of ``text`` for
    ADD and UPDATE.
    """

    event: EventName
    text: str
    memory_id: str | None = None
    previous: str | None = None
    vector: np.ndarray | None = None
    superseded_by: int | None = None


@dataclass
class Plan:
    """The planner's answer. ``inferred`` False: store the messages verbatim, ``reason`` says why."""

    actions: list[Action]
    usage: Usage
    inferred: bool
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
