"""The LLM half of graph memory: conversation in, entities and relations out; and, given the
stored relations of the entities touched, which of them the new information retires.

It knows no storage (``mem0_mcp.graph.memory`` resolves entities and writes). Prompts are the editable
files ``prompts/graph_extraction.md`` and ``prompts/graph_contradiction.md``; a file of the same
name in ``settings.prompts_dir`` replaces the bundled one.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from mem0_mcp.llm.base import LLM, LLMError
from mem0_mcp.llm.jsonparse import complete_json
from mem0_mcp.llm.prompts import PromptSet
from mem0_mcp.models import Message, Scope, Usage

logger = logging.getLogger(__name__)

GRAPH_PROMPTS = ("graph_extraction", "graph_contradiction", "language_rule")
SELF_WORDS = frozenset({"i", "me", "my", "mine", "myself", "user", "the user", "speaker", "the speaker"})
MAX_NAME = 200
MAX_RELATION = 80
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_EDGE_PUNCT = "\"'`.,;:!?()[]{}<>"


def normalize_name(name: str) -> str:
    """The key two mentions of one entity share: case, spacing, accents' form and edge punctuation."""
    text = unicodedata.normalize("NFKC", name).casefold().strip().strip(_EDGE_PUNCT).strip()
    text = " ".join(text.split())
    return text[4:] if text.startswith("the ") and len(text) > 4 else text


def normalize_relation(relation: str) -> str:
    """Relations are compared as lowercase snake_case (``Works At`` == ``works_at``)."""
    text = _NON_WORD.sub("_", unicodedata.normalize("NFKC", relation).casefold()).strip("_")
    return text[:MAX_RELATION]


def clean_name(name: str) -> str:
    return " ".join(str(name).split()).strip(_EDGE_PUNCT).strip()[:MAX_NAME]


def transcript(msgs: Sequence[Message]) -> str:
    """The conversation as ``role: text`` lines for the extraction prompt (system messages out)."""
    lines = []
    for m in msgs:
        if m.role == "system":
            continue
        if isinstance(m.content, str):
            text = m.content
        else:
            text = " ".join(str(b.get("text", "")) for b in m.content if isinstance(b, dict))
        text = " ".join(text.split())
        if text:
            lines.append(f"{m.name} ({m.role}): {text}" if m.name else f"{m.role}: {text}")
    return "\n".join(lines)


EXPLICIT_SOURCE = "explicit"  # relations written through add_relation, not derived from a memory


def self_name(scope: Scope) -> str:
    """The entity name "I", "me", "my" stand for in this scope."""
    return scope.user_id or scope.agent_id or scope.run_id or "user"


def load_graph_prompts(override_dir: Path | None = None) -> PromptSet:
    """The graph's prompts, each from ``override_dir`` when it has the file, else bundled.
    Raises ``PromptError`` when one is missing."""
    return PromptSet.load(override_dir, names=GRAPH_PROMPTS)


@dataclass
class Triple:
    source: str
    relation: str
    destination: str


@dataclass
class Extraction:
    entities: dict[str, str]  # cleaned name -> type
    relations: list[Triple]
    usage: Usage = field(default_factory=Usage)


class GraphExtractor:
    def __init__(
        self,
        llm: LLM,
        prompts: PromptSet | None = None,
        *,
        max_tokens: int | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.llm = llm
        self.prompts = prompts or load_graph_prompts()
        self.max_tokens = max_tokens
        self.today = today or date.today

    def _json(self, prompt: str, system: str, user: str, key: str, usage: Usage) -> dict[str, Any]:
        return complete_json(
            self.llm,
            system,
            [{"role": "user", "content": user}],
            prompt=prompt,
            usage=usage,
            max_tokens=self.max_tokens,
            expect_key=key,
        )

    def extract(self, transcript: str, self_name: str) -> Extraction:
        """Entities and relations of a conversation; "I/me/my" become ``self_name``. Raises LLMError."""
        usage = Usage()
        system = self.prompts.render(
            "graph_extraction", today=self.today().isoformat(), self_name=self_name, messages=transcript
        )
        data = self._json(
            "graph_extraction", system, "Extract the entities and relations as JSON.", "relations", usage
        )
        entities: dict[str, str] = {}
        by_norm: dict[str, str] = {}

        def name_of(raw: object) -> str | None:
            if not isinstance(raw, str) or not clean_name(raw):
                return None
            name = clean_name(raw)
            if normalize_name(name) in SELF_WORDS:
                name = self_name
            return by_norm.setdefault(normalize_name(name), name)

        raw_entities = data.get("entities") or []
        for item in raw_entities if isinstance(raw_entities, list) else []:
            if isinstance(item, dict) and (name := name_of(item.get("name"))):
                kind = item.get("type")
                kind = " ".join(str(kind).casefold().split())[:40] if isinstance(kind, str) else ""
                if name == self_name:
                    kind = "person"
                entities.setdefault(name, kind or "entity")
        relations: list[Triple] = []
        seen: set[tuple[str, str, str]] = set()
        raw_relations = data.get("relations")
        if not isinstance(raw_relations, list):
            raise LLMError(f'"relations" must be a list, got {type(raw_relations).__name__}')
        for item in raw_relations:
            if not isinstance(item, dict):
                logger.warning("graph: relation ignored, not an object: %r", item)
                continue
            src, dst = name_of(item.get("source")), name_of(item.get("destination"))
            rel = normalize_relation(str(item.get("relation") or item.get("relationship") or ""))
            if not src or not dst or not rel:
                logger.warning("graph: relation ignored, source/relation/destination missing: %r", item)
                continue
            if normalize_name(src) == normalize_name(dst):
                continue
            key = (normalize_name(src), rel, normalize_name(dst))
            if key in seen:
                continue
            seen.add(key)
            for end in (src, dst):
                entities.setdefault(end, "person" if end == self_name else "entity")
            relations.append(Triple(src, rel, dst))
        # Entities with no relation are not stored: the graph is made of relations.
        used = {n for t in relations for n in (t.source, t.destination)}
        return Extraction({n: t for n, t in entities.items() if n in used}, relations, usage)

    def contradicted(
        self,
        existing: Sequence[Triple],
        new: Sequence[Triple],
        transcript: str,
        usage: Usage,
    ) -> dict[int, str]:
        """Index into ``existing`` -> reason, for each stored relation the new information retires."""
        if not existing:
            return {}

        def listing(items: Sequence[Triple]) -> str:
            return "\n".join(
                f"{i}: {json.dumps(t.source, ensure_ascii=False)} -{t.relation}-> "
                f"{json.dumps(t.destination, ensure_ascii=False)}"
                for i, t in enumerate(items)
            )

        system = self.prompts.render(
            "graph_contradiction",
            today=self.today().isoformat(),
            existing_relations=listing(existing),
            new_relations=listing(new) or "(none)",
            messages=transcript,
        )
        data = self._json(
            "graph_contradiction",
            system,
            "Which stored relations are no longer true? Answer as JSON.",
            "invalidate",
            usage,
        )
        raw = data.get("invalidate")
        if not isinstance(raw, list):
            raise LLMError(f'"invalidate" must be a list, got {type(raw).__name__}')
        out: dict[int, str] = {}
        for item in raw:
            entry = item if isinstance(item, dict) else {"id": item}
            idx = entry.get("id")
            if isinstance(idx, str) and idx.strip().isdigit():
                idx = int(idx)
            if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(existing):
                logger.warning("graph: invalidation ignored, the model invented relation %r", item)
                continue
            reason = entry.get("reason")
            out[idx] = " ".join(reason.split())[:300] if isinstance(reason, str) else ""
        return out
