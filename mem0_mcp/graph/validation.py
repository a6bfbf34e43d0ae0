"""Checks on what callers send the graph: names, relation words, types, and read-only Cypher.

Each check raises ``InvalidInputError`` naming the field, so a tool can tell the agent what to fix.
"""

from __future__ import annotations

import re

from mem0_mcp.errors import InvalidInputError
from mem0_mcp.graph.extraction import clean_name

_WORD = re.compile(r"\w+", re.UNICODE)
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
