"""What a person types in the page's filter and metadata boxes, as the engine's values."""

from __future__ import annotations

import json
from typing import Any

from mem0_mcp.errors import InvalidInputError


def _value(text: str) -> Any:
    """A number, true/false or null as JSON reads it; anything else is the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text


def parse_filter(text: str) -> dict[str, Any] | None:
    """``key=value, key2=value2`` (each must match) or a JSON object in Mem0's filter syntax
    (``{"priority": {"gte": 2}}``); empty: no filter. Raises InvalidInputError naming the box."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            why = f"is not valid JSON ({exc.msg} at column {exc.colno})"
            raise InvalidInputError("filter", why) from None
        if not isinstance(parsed, dict):
            raise InvalidInputError("filter", "a JSON filter must be an object")
        return parsed
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                "filter", f"write key=value pairs separated by commas, or a JSON object; got {part.strip()!r}"
            )
        out[key.strip()] = _value(value.strip())
    return out


def parse_metadata(text: str) -> dict[str, Any]:
    """The metadata box: a JSON object (empty box: no metadata). Raises InvalidInputError."""
    text = text.strip() or "{}"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            "metadata", f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidInputError("metadata", 'must be a JSON object such as {"topic": "food"}')
    return parsed
