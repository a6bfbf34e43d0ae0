"""What the people commands print: rich tables on stdout (colour only on a terminal), the engine's
models as JSON with ``--json``, one-line errors and progress bars on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from rich.console import Console

    from mem0_mcp.models import AddResult, HistoryEntry, MemoryItem, Stats


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr): colour and styles only when it is a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    # A pipe or a file gets plain text, wide enough that tables do not wrap at 80 columns.
    return Console(
        file=stream,
        no_color=not tty,
        color_system="auto" if tty else None,
        force_terminal=tty,
        highlight=False,
        width=None if tty else 160,
        soft_wrap=False,
    )


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    """The engine's model(s) as indented JSON on stdout."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, dict):
        data = value
    else:
        data = [v.model_dump(mode="json") for v in value]
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fail(command: str, message: object) -> int:
    """One line on stderr naming the command; the exit status of an error (1)."""
    print(f"mem0-mcp {command}: {message}", file=sys.stderr)
    return 1


def _when(iso: str | None) -> str:
    """'2025-01-02T03:04:05.678+00:00' -> '2025-01-02 03:04' (the table's width matters)."""
    return iso[:16].replace("T", " ") if iso else ""


def _scope(item: MemoryItem | HistoryEntry) -> str:
    parts = [f"{k.split('_')[0]}={v}" for k in ("user_id", "agent_id", "run_id") if (v := getattr(item, k))]
    return " ".join(parts)


def memories_table(items: Sequence[MemoryItem], *, title: str | None = None, scores: bool = False) -> None:
    """Memories as a table: id, text, scope, time (and score for a search)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("id", no_wrap=True, style="cyan")
    if scores:
        table.add_column("score", justify="right")
    table.add_column("memory", overflow="fold", ratio=1)
    table.add_column("scope", no_wrap=True, style="dim")
    table.add_column("created", no_wrap=True, style="dim")
    for m in items:
        text = escape(m.memory)
        if m.superseded_at:
            text = f"[dim]{text} (superseded by {m.superseded_by})[/dim]"
        cells = [m.id, *([f"{m.score:.3f}" if m.score is not None else ""] if scores else [])]
        table.add_row(*cells, text, _scope(m), _when(m.created_at))
    console().print(table)


def memory_detail(item: MemoryItem) -> None:
    """One memory, field by field (empty fields left out)."""
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in item.model_dump(mode="json").items():
        if value in (None, {}, ""):
            continue
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
        table.add_row(key, escape(shown))
    console().print(table)


def history_table(entries: Sequence[HistoryEntry]) -> None:
    """A memory's events, oldest first: when, what, who, and the text before and after."""
    from rich.table import Table

    table = Table(title=f"history of {entries[0].memory_id}" if entries else None, title_justify="left")
    table.add_column("when", no_wrap=True)
    table.add_column("event", no_wrap=True, style="bold")
    table.add_column("source", no_wrap=True, style="dim")
    table.add_column("before", overflow="fold", ratio=1)
    table.add_column("after", overflow="fold", ratio=1)
    for e in entries:
        table.add_row(
            _when(e.created_at),
            e.event,
            e.source or "",
            escape(e.old_memory or ""),
            escape(e.new_memory or ""),
        )
    console().print(table)


def add_table(result: AddResult) -> None:
    """What an add did: one row per memory touched, then why it was verbatim and what is close."""
    from rich.table import Table

    table = Table()
    table.add_column("event", no_wrap=True, style="bold")
    table.add_column("id", no_wrap=True, style="cyan")
    table.add_column("memory", overflow="fold", ratio=1)
    for e in result.results:
        table.add_row(e.event, e.id, escape(e.memory))
    console().print(table)
    err = console(stderr=True)
    for warning in result.warnings:
        err.print(f"warning: {escape(warning)}")
    for rel in result.related:
        err.print(f"close to {rel.id} ({rel.score:.2f}): {escape(rel.memory)}")
    if result.superseded:
        err.print(f"superseded: {', '.join(result.superseded)}")


def stats_table(stats: Stats, extra: dict[str, object] | None = None, skip: Sequence[str] = ()) -> None:
    """The engine's counts and identity, one line each (``skip``: fields left out)."""
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value")
    for key, value in {**stats.model_dump(exclude=set(skip)), **(extra or {})}.items():
        table.add_row(key.replace("_", " "), escape(str(value)))
    console().print(table)


def escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _progress_lines(description: str) -> Callable[[int, int, str], None]:
    """``update(done, total, what)`` printing a line per tenth of the work (and the last)."""
    shown = [-1]

    def update(done: int, total: int, what: str) -> None:
        percent = 100 * done // total if total else 100
        if percent // 10 > shown[0] or done == total:
            shown[0] = percent // 10
            print(f"{description}: {done}/{total} {what} ({percent}%)", file=sys.stderr, flush=True)

    return update


@contextmanager
def progress_bar(description: str, *, enabled: bool = True, lines: bool = False) -> Iterator[Any]:
    """A progress bar on stderr (drawn only on a terminal); yields ``update(done, total, what)``.
    Elsewhere nothing, or with ``lines`` a line per tenth of the work (for logs of long jobs)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = console(stderr=True)
    if not enabled or not err.is_terminal:
        yield _progress_lines(description) if enabled and lines else (lambda done, total, what: None)
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(description, total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{description}: {what}")

        yield update
