"""Metadata filters → a LanceDB (DataFusion SQL) ``where`` string.

Every value is rendered as a SQL literal by this module alone, and keys are checked against a
strict pattern, so nothing a caller sends is spliced into SQL unescaped: a user_id of
``x' OR '1'='1`` compares equal to that exact string and nothing else.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Re-exported (`x as x`): the time helpers live in mem0_mcp.clock; the engine imports them from here.
from mem0_mcp.clock import iso_utc as iso_utc
from mem0_mcp.clock import parse_time as parse_time
from mem0_mcp.errors import InvalidInputError

OPERATORS = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains")
_COMPARE = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# Columns a filter may name directly; any other key is looked up in the metadata JSON.
TIME_COLUMNS = ("created_at", "updated_at", "event_at")
TEXT_COLUMNS = ("memory_type", "role", "actor_id", "name", *TIME_COLUMNS)
# Metadata keys as people write them: letters (any script), digits, '_', '-', '.', ':', '/',
# '@', '+', '#' and inner spaces. Quotes, backslashes and SQL wildcards stay out.
_KEY = re.compile(r"^[\w\-.:/@+#]([\w\-.:/@+# ]{0,62}[\w\-.:/@+#])?$")
MAX_DEPTH = 8
MAX_IN_VALUES = 1000


def sql_str(value: str, field: str = "filters") -> str:
    """A SQL string literal; the only escape DataFusion needs is a doubled quote."""
    if "\x00" in value:
        raise InvalidInputError(field, "string values must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(
            field, "contains a lone surrogate, which is not valid Unicode; send valid Unicode"
        ) from None
    return "'" + value.replace("'", "''") + "'"


def json_path(key: str) -> str:
    """The JSONPath of a top-level metadata key, quoted: ``$.my-key`` is not valid JSONPath
    (Lance refused it with a Rust error), ``$["my-key"]`` is."""
    return sql_str("$[" + json.dumps(key, ensure_ascii=False) + "]")


def sql_number(value: int | float, field: str = "filters") -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(field, f"number {value!r} is not finite")
    return repr(value) if isinstance(value, float) else str(int(value))


def scope_clause(**ids: str | None) -> str:
    parts = [f"{col} = {sql_str(val)}" for col, val in ids.items() if val]
    return " AND ".join(parts)


def hash_clause(
    scope: Mapping[str, str | None], hashes: Sequence[str], event_at: str | None, *, any_time: bool
) -> str:
    """Current rows of exactly ``scope`` with one of ``hashes`` and the event time ``event_at``
    (any with ``any_time``)."""
    exact = " AND ".join(f"{col} = {sql_str(val)}" if val else f"{col} IS NULL" for col, val in scope.items())
    in_list = ", ".join(sql_str(h) for h in set(hashes))
    where = f"{exact} AND superseded_at IS NULL AND hash IN ({in_list})"
    if not any_time:
        where += f" AND event_at = {sql_str(event_at)}" if event_at else " AND event_at IS NULL"
    return where


def compile_filters(filters: Mapping[str, Any] | None) -> str:
    """Translate a filter object into SQL; raise InvalidInputError naming the bad part."""
    if filters is None:
        return ""
    if not isinstance(filters, Mapping):
        raise InvalidInputError("filters", f"expected an object, got {type(filters).__name__}")
    return _compile(filters, "filters", 0)


def _compile(node: Mapping[str, Any], path: str, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise InvalidInputError(path, f"filters nest deeper than {MAX_DEPTH} levels")
    clauses = []
    for key, value in node.items():
        upper = key.upper() if isinstance(key, str) else key
        if upper in ("AND", "OR"):
            if not isinstance(value, list) or not value:
                raise InvalidInputError(f"{path}.{key}", "expects a non-empty list of filter objects")
            subs = []
            for i, sub in enumerate(value):
                if not isinstance(sub, Mapping) or not sub:
                    raise InvalidInputError(f"{path}.{key}[{i}]", "expects a non-empty filter object")
                subs.append(_compile(sub, f"{path}.{key}[{i}]", depth + 1))
            clauses.append("(" + f" {upper} ".join(subs) + ")")
        elif upper == "NOT":
            if not isinstance(value, Mapping) or not value:
                raise InvalidInputError(f"{path}.{key}", "expects a non-empty filter object")
            clauses.append(f"(NOT {_compile(value, f'{path}.{key}', depth + 1)})")
        else:
            clauses.append(_field(key, value, f"{path}.{key}"))
    if not clauses:
        raise InvalidInputError(path, "is an empty filter object")
    return clauses[0] if len(clauses) == 1 else "(" + " AND ".join(clauses) + ")"


def _field(key: str, cond: Any, path: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidInputError(
            path,
            "filter keys must be 1 to 64 letters, digits, spaces or any of _ - . : / @ + # "
            "(no leading or trailing space)",
        )
    if isinstance(cond, Mapping):
        if not cond:
            raise InvalidInputError(path, 'operator object is empty; use e.g. {"eq": value}')
        parts = []
        for op, val in cond.items():
            if op not in OPERATORS:
                raise InvalidInputError(
                    f"{path}.{op}", f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}"
                )
            parts.append(_op(key, op, val, f"{path}.{op}"))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
    return _op(key, "eq", cond, path)


def _op(key: str, op: str, value: Any, path: str) -> str:
    if op in ("in", "nin"):
        if not isinstance(value, list) or not value:
            raise InvalidInputError(path, f"'{op}' expects a non-empty list")
        if len(value) > MAX_IN_VALUES:
            raise InvalidInputError(path, f"'{op}' takes at most {MAX_IN_VALUES} values")
        ors = " OR ".join(_op(key, "eq", v, path) for v in value)
        return f"({ors})" if op == "in" else f"(NOT ({ors}) OR {_accessor(key, value[0])} IS NULL)"
    if op == "contains":
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidInputError(path, "'contains' expects a string or number")
        if key in TEXT_COLUMNS:
            return f"strpos({key}, {sql_str(str(value), path)}) > 0"
        literal = sql_str(value, path) if isinstance(value, str) else sql_number(value, path)
        # A metadata value may be a list (membership) or a string (substring). The substring is
        # looked for in the value's JSON text, which never fails: json_get_string raises on a
        # list, so one memory holding a list under the key failed the whole query. The needle
        # is JSON-escaped like the text; the text must be a JSON string (starts with a quote).
        path_sql = json_path(key)
        needle = json.dumps(str(value), ensure_ascii=False)[1:-1]
        text = f"json_extract(metadata, {path_sql})"
        return (
            f"(json_array_contains(metadata, {path_sql}, {literal}) "
            f"OR ({text} LIKE '\"%' AND strpos({text}, {sql_str(needle, path)}) > 0))"
        )
    sql_op = _COMPARE[op]
    if value is None:
        if op not in ("eq", "ne"):
            raise InvalidInputError(path, f"'{op}' cannot compare with null")
        null = "IS NULL" if op == "eq" else "IS NOT NULL"
        return f"{_accessor(key, None)} {null}"
    literal = _literal(key, value, path, ordered=op not in ("eq", "ne"))
    clause = f"{_accessor(key, value)} {sql_op} {literal}"
    if op == "ne":
        # A memory that lacks the key is "not equal" too.
        return f"({clause} OR {_accessor(key, value)} IS NULL)"
    return clause


def _accessor(key: str, value: Any) -> str:
    if key in TEXT_COLUMNS:
        return key
    k = sql_str(key)
    if isinstance(value, bool):
        return f"json_get_bool(metadata, {k})"
    if isinstance(value, int | float):
        return f"json_get_float(metadata, {k})"
    return f"json_get_string(metadata, {k})"


def _literal(key: str, value: Any, path: str, *, ordered: bool) -> str:
    if key in TIME_COLUMNS:
        return sql_str(parse_time(value, path), path)
    if isinstance(value, bool):
        if key in TEXT_COLUMNS or ordered:
            raise InvalidInputError(path, f"cannot compare {key!r} with a boolean")
        return "true" if value else "false"
    if isinstance(value, int | float):
        if key in TEXT_COLUMNS:
            return sql_str(str(value), path)
        return sql_number(value, path)
    if isinstance(value, str):
        return sql_str(value, path)
    raise InvalidInputError(
        path, f"filter values must be strings, numbers, booleans or null, got {type(value).__name__}"
    )
