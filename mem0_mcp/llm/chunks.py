"""Fitting a conversation into the model's token budget: estimates and chunks of message lines."""

from __future__ import annotations

CHARS_PER_TOKEN = 4
DEFAULT_TOKEN_BUDGET = 6000


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token), never 0 for a non-empty text."""
    return max(1, len(text) // CHARS_PER_TOKEN) if text else 0


def chunk_lines(lines: list[str], token_budget: int, overhead: int) -> list[str]:
    """Consecutive message lines packed under ``token_budget - overhead``; over-long lines are split.

    Each chunk is the lines joined by newlines. A split line keeps its speaker on every piece.
    """
    budget = max(64, token_budget - overhead)
    pieces: list[str] = []
    for line in lines:
        if estimate_tokens(line) <= budget:
            pieces.append(line)
        else:
            pieces += _split_line(line, budget)
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for piece in pieces:
        cost = estimate_tokens(piece) + 1
        if current and used + cost > budget:
            chunks.append("\n".join(current))
            current, used = [], 0
        current.append(piece)
        used += cost
    if current:
        chunks.append("\n".join(current))
    return chunks


def _split_line(line: str, budget: int) -> list[str]:
    # Every piece keeps the speaker, so a later chunk still knows who said it.
    speaker, sep, rest = line.partition(": ")
    prefix = f"{speaker}{sep}" if sep and len(speaker) < 200 else ""
    rest = rest if prefix else line
    width = max(CHARS_PER_TOKEN * 16, budget * CHARS_PER_TOKEN - len(prefix) - 16)
    pieces: list[str] = []
    first = True
    while rest:
        cut = rest.rfind(" ", 0, width) if len(rest) > width else len(rest)
        cut = cut if cut > width // 2 else min(width, len(rest))
        pieces.append(prefix + ("" if first else "(continued) ") + rest[:cut].strip())
        rest = rest[cut:].strip()
        first = False
    return pieces
