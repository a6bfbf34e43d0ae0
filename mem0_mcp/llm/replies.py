"""Bounds on what a model's answer may hold, and the small readers of its loose JSON values.

A hostile or broken model must not turn one add into thousands of memories or store megabytes
the user never wrote: past these bounds the planner raises UnusableReplyError and the add falls
back to the user's own text, verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass

from mem0_mcp.llm.base import LLMError

DEFAULT_MAX_FACTS = 200
DEFAULT_MAX_FACT_BYTES = 64 * 1024


class UnusableReplyError(LLMError):
    """The model answered, but with facts that cannot be stored as they are (wrong type, too many,
    too long). The add then keeps the user's own text verbatim instead."""


@dataclass(frozen=True)
class ReplyLimits:
    """How many facts one add may yield, and how long each may be (UTF-8 bytes)."""

    max_facts: int = DEFAULT_MAX_FACTS
    max_fact_bytes: int = DEFAULT_MAX_FACT_BYTES

    def fact(self, value: object, where: str) -> str | None:
        """The text of one fact from the model, whitespace folded; None for an empty string.

        ``where`` names the value in the reply (``facts[3].text``) for the error message.
        Raises UnusableReplyError for anything but a string, or a text over ``max_fact_bytes``.
        """
        if not isinstance(value, str):
            raise UnusableReplyError(f"{where} is {type(value).__name__}, not text: {preview(value)}")
        text = " ".join(value.split())
        self.check_size(text, where)
        return text or None

    def check_size(self, text: str, where: str) -> None:
        """Raises UnusableReplyError when ``text`` is over ``max_fact_bytes``."""
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_fact_bytes:
            raise UnusableReplyError(
                f"{where} has {size:,} bytes, over the limit of {self.max_fact_bytes:,} (max_text_bytes)"
            )

    def check_count(self, count: int) -> None:
        """Raises UnusableReplyError when ``count`` facts are over ``max_facts``."""
        if count > self.max_facts:
            raise UnusableReplyError(
                f"the model returned {count:,} facts, over the limit of {self.max_facts:,} per add "
                "(max_facts_per_add)"
            )


def preview(value: object, width: int = 120) -> str:
    """A short printable form of a value from a reply (or of an exception), for messages."""
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= width else text[:width] + "..."


def as_int(value: object) -> int | None:
    """An index the model wrote as a number or a numeric string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def norm(text: str) -> str:
    """The form two facts are compared in: whitespace folded, case folded."""
    return " ".join(text.split()).casefold()
