"""The one clock and the one timestamp format of the package.

Every stored time is an ISO 8601 UTC string of fixed width (``2026-01-02T03:04:05.000006Z``), so
timestamps sort and compare as strings in LanceDB, SQLite and Kùzu alike.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from mem0_mcp.errors import InvalidInputError


def iso_utc(dt: datetime) -> str:
    """``dt`` in the stored format (a naive ``dt`` is taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    """The current time in the stored format."""
    return iso_utc(datetime.now(UTC))


def parse_time(value: object, field: str) -> str:
    """ISO 8601 string or epoch seconds (milliseconds when > 1e11) -> the stored format.

    Raises ``InvalidInputError`` naming ``field`` when ``value`` is neither.
    """
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
