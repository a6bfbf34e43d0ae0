"""Checks on what callers send the graph: names, relation words, types, and read-only Cypher;
and the guard on which names may be taken for one entity by their embeddings.

Each check raises ``InvalidInputError`` naming the field, so a tool can tell the agent what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mem0_mcp.errors import InvalidInputError
from mem0_mcp.graph.extraction import (
    SELF_WORDS,
    Extraction,
    Triple,
    clean_name,
    normalize_name,
    normalize_relation,
)
from mem0_mcp.models import StatedRelation

_WORD = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(r"\d+", re.UNICODE)
MAX_CYPHER = 10_000


def check_str(field_name: str, value: object) -> str:
    """``value`` when it is a non-empty string; raises ``InvalidInputError`` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(field_name, "must be a non-empty string")
    return value


def check_name(field_name: str, value: object) -> str:
    """An entity name, cleaned (``clean_name``); raises when nothing of a name is left."""
    name = clean_name(check_str(field_name, value))
    if not name:
        raise InvalidInputError(field_name, "needs a name with letters or digits")
    return name


def entity_type(value: str | None) -> str:
    """A caller's entity type, normalized (lowercase, single spaces, 40 characters); default
    ``entity``."""
    if value is None or not str(value).strip():
        return "entity"
    return " ".join(str(value).casefold().split())[:40]


def stated_extraction(relations: Sequence[StatedRelation], self_name: str) -> Extraction:
    """The relations a caller read in the text it adds, as an extraction the graph writes: names
    cleaned, "user" / "I" / "me" as ``self_name`` (the scope's own entity), repeats dropped.
    Raises ``InvalidInputError`` naming ``relations[i].<field>`` before anything is written."""
    entities: dict[str, str] = {}
    triples: list[Triple] = []
    seen: set[tuple[str, str, str]] = set()
    for i, r in enumerate(relations):
        at = f"relations[{i}]"
        ends = []
        for field, end, kind in (
            ("source", r.source, r.source_type),
            ("destination", r.destination, r.destination_type),
        ):
            name = check_name(f"{at}.{field}", end)
            if normalize_name(name) in SELF_WORDS or normalize_name(name) == normalize_name(self_name):
                name, kind = self_name, "person"
            entities.setdefault(name, entity_type(kind))
            ends.append(name)
        rel = normalize_relation(check_str(f"{at}.relationship", r.relationship))
        if not rel:
            raise InvalidInputError(f"{at}.relationship", "needs a letter or digit, e.g. has_sister")
        if normalize_name(ends[0]) == normalize_name(ends[1]):
            raise InvalidInputError(f"{at}.destination", "must differ from source")
        key = (normalize_name(ends[0]), rel, normalize_name(ends[1]))
        if key not in seen:
            seen.add(key)
            triples.append(Triple(ends[0], rel, ends[1]))
    return Extraction(entities, triples)


def may_merge_by_embedding(mention: str, stored: str) -> bool:
    """Whether two names whose embeddings are close may be taken for one entity.

    Never when their numbers differ ("process 1 node 5" / "process 2 node 5", "Windows 10" / "11",
    "v2 API" / "v3 API", "2023 report" / "report") or when they differ only in one-character words
    ("Plan A" / "Plan B", "Building A" / "Building"). An embedding model reads such names as near
    twins (MiniLM: 0.93 for the first pair, as close as true synonyms such as "Acme Corp" / "Acme
    Inc" at 0.94), yet the number or the letter is exactly what tells the entities apart. The
    costs are not symmetric: a wrong merge silently folds a relation into another one, a missed
    merge leaves two entities, both visible. Numbers compare by value, in order ("node 05" is
    "node 5")."""
    if _numbers(mention) != _numbers(stored):
        return False
    differ = _words(mention) ^ _words(stored)
    return not differ or any(len(w) > 1 for w in differ)


def _numbers(name: str) -> list[int]:
    return [int(n) for n in _NUMBER.findall(name)]


def _words(name: str) -> set[str]:
    return {w for w in _WORD.findall(name.casefold()) if not w.isdigit()}


_WRITE_WORDS = frozenset(
    {
        "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER", "COPY", "LOAD",
        "INSTALL", "UNINSTALL", "ATTACH", "USE", "EXPORT", "IMPORT", "BEGIN", "COMMIT",
        "ROLLBACK", "CHECKPOINT", "TRANSACTION", "FOREACH",
    }
)  # fmt: skip
_READ_PROCEDURES = frozenset(
    {"SHOW_TABLES", "TABLE_INFO", "SHOW_CONNECTION", "SHOW_INDEXES", "QUERY_FTS_INDEX", "CURRENT_SETTING"}
)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", re.DOTALL)
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def check_read_only(cypher: object) -> str:
    """Refuse anything but a single read query; returns it. Keywords are looked for outside string
    literals and comments; the query then runs on a read-only open of the database as a second
    wall. Raises ``InvalidInputError``."""
    if not isinstance(cypher, str) or not cypher.strip():
        raise InvalidInputError("cypher", "must be a non-empty Cypher query")
    if len(cypher) > MAX_CYPHER:
        raise InvalidInputError("cypher", f"is over {MAX_CYPHER} characters")
    bare = _STRINGS.sub("''", _COMMENTS.sub(" ", cypher))
    if ";" in bare.strip().rstrip(";"):
        raise InvalidInputError("cypher", "one statement only")
    words = [w.upper() for w in _WORD.findall(bare)]
    bad = sorted({w for w in words if w in _WRITE_WORDS})
    if bad:
        raise InvalidInputError("cypher", f"read-only queries only; {', '.join(bad)} is not allowed")
    for i, w in enumerate(words):
        if w == "CALL":
            proc = words[i + 1] if i + 1 < len(words) else ""
            if proc not in _READ_PROCEDURES:
                raise InvalidInputError(
                    "cypher",
                    f"CALL {proc or '?'} is not allowed; allowed: {', '.join(sorted(_READ_PROCEDURES))}",
                )
    if not any(w in ("MATCH", "RETURN", "UNWIND", "WITH", "CALL") for w in words):
        raise InvalidInputError("cypher", "expected a MATCH ... RETURN query")
    return cypher
