"""Time as the stores keep it: one format, one clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from mem0_mcp.errors import InvalidInputError


def now_iso() -> str:
    """The current time in the stored format."""
    return iso_utc(datetime.now(UTC))


def iso_utc(dt: datetime) -> str:
    """The one timestamp format stored; fixed width, so strings sort and compare as times."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any, field: str) -> str:
    """ISO 8601 string or epoch seconds (milliseconds when > 1e11) → canonical UTC string."""
    if isinstance(value, bool):
        raise InvalidInputError(field, f"expected an ISO 8601 date/time or epoch seconds, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInputError(field, f"epoch value {value!r} is not finite")
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return iso_utc(datetime.fromtimestamp(seconds, tz=UTC))
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInputError(field, f"epoch value {value!r} is out of range") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return iso_utc(datetime.fromisoformat(text))
        except ValueError:
            pass
    raise InvalidInputError(
        field,
        f"cannot parse {value!r} as a date/time; use ISO 8601 (e.g. '2023-05-08T13:56:00Z' or "
        "'2023-05-08') or epoch seconds",
    )
