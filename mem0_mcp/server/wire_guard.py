"""What the stdio server answers to a line it cannot take: JSON-RPC errors, never a crash.

Python's ``json`` recurses once per nesting level and raises ``RecursionError`` near 1,000
levels; one hostile line must not end the session. So a line's depth is measured before
anything parses it, by a scan that does not recurse, and a line nested deeper than
``MAX_JSON_DEPTH`` is refused with the id read from its top level when there is one (a client
waits for the reply to its id). The SDK itself refuses messages deeper than ~200 levels, so
the bound takes nothing away from a message that could have been served.

Only the standard library: the stdio front imports this before the SDK has loaded.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 512

# A JSON string (escapes included) or one bracket; everything else is skipped by the scan.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_ID_VALUE = re.compile(rb'\s*:\s*(-?\d+(?=\s*[,}])|"[^"\\]*(?:\\.[^"\\]*)*")', re.DOTALL)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_NOT_BRACKET = bytes(sorted(set(range(256)) - _OPEN - _CLOSE))

JsonRpcId = str | int | None


def too_deep(line: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``line`` nests arrays and objects more than ``limit`` levels deep.

    Brackets inside strings do not count. Linear in the line's length and free of recursion;
    a line with no more than ``limit`` opening brackets in all is answered without a scan.
    """
    if line.count(b"[") + line.count(b"{") <= limit:
        return False
    # Strings out, then everything but brackets: the loop below sees brackets only.
    brackets = _STRING.sub(b"", line).translate(None, _NOT_BRACKET)
    depth = 0
    for byte in brackets:
        if byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def top_level_id(line: bytes) -> JsonRpcId:
    """The ``id`` member of the line's top-level object, read without parsing the rest; or None."""
    depth = 0
    for match in _TOKEN.finditer(line):
        token = match.group()
        first = token[0]
        if first in _OPEN:
            depth += 1
        elif first in _CLOSE:
            depth -= 1
        elif depth == 1 and token == b'"id"':
            value = _ID_VALUE.match(line, match.end())
            if value is None:
                continue  # "id" as a value, not a key
            try:
                parsed = json.loads(value.group(1))
            except ValueError:
                return None
            return parsed if isinstance(parsed, str | int) else None
    return None


def parse_lenient(line: bytes) -> Any:
    """``line`` as Python's ``json`` reads it, for a line the SDK's reader refused.

    The SDK's JSON reader refuses two kinds of valid JSON: a lone surrogate escape such as
    ``"\\ud800"`` (JSON allows it; UTF-8 cannot store it) and nesting past 200 levels. Either
    answered "-32600 Invalid Request" to a well-formed call; read here, the call reaches the tool,
    whose argument checks name the field (``text: contains a lone surrogate ...``, ``metadata:
    nests ... deeper than 32 levels``). Only for lines within ``MAX_JSON_DEPTH`` (``json``
    recurses per level); raises ValueError when the line is not JSON.
    """
    if too_deep(line):
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(line)


def error(msg_id: JsonRpcId, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def too_deep_error(line: bytes) -> dict[str, Any]:
    """-32600 for the request's id when the line names one, else -32700 (the id is unknown)."""
    msg_id = top_level_id(line)
    what = f"nested deeper than {MAX_JSON_DEPTH} levels"
    if msg_id is None:
        return error(None, -32700, f"Parse error: {what}")
    return error(msg_id, -32600, f"Invalid Request: {what}")


def invalid_message_error(line: bytes) -> dict[str, Any]:
    """The reply to a line the SDK could not take as a JSON-RPC message."""
    if too_deep(line):
        return too_deep_error(line)
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return error(None, -32700, "Parse error: not JSON")
    msg_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(msg_id, str | int) or isinstance(msg_id, bool):
        msg_id = None
    return error(msg_id, -32600, "Invalid Request: not a valid JSON-RPC 2.0 message for MCP")
