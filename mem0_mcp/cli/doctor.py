"""``mem0-mcp doctor``: check the stores of a data dir against each other, print one line per
problem (or "all stores consistent"), and with ``--repair`` mend what can be mended. On object
storage (MEM0_MCP_STORE_URI) it checks, and merges, same-text duplicates only.

Exit status: 0 when the stores agree (after repairs), 1 when problems remain, 2 when the data dir
(or the store) cannot be opened.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from mem0_mcp.errors import Mem0Error

if TYPE_CHECKING:
    from mem0_mcp.config import Settings
    from mem0_mcp.engine.checks import Finding
    from mem0_mcp.engine.storage import Storage


def add_doctor_parser(commands: argparse._SubParsersAction) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check the stores of MEM0_MCP_DATA_DIR against each other (on MEM0_MCP_STORE_URI: same-text "
        "duplicates); --repair mends what it can",
        description="Check the memory table, the history and the write-behind journal of "
        "MEM0_MCP_DATA_DIR against each other and print one line per problem. With --repair: rebuild "
        "missing history (marked source=rebuilt), put set-aside journal rows back (re-embedded) or "
        "save them to a file, and make the newest readable version of the memory table the newest. "
        "With MEM0_MCP_STORE_URI (object storage): list live memories of a scope with the same text; "
        "--repair keeps the first stored and marks the others superseded by it.",
    )
    doctor.add_argument("--repair", action="store_true", help="repair what can be repaired")


def run_doctor(args: argparse.Namespace, configure_logging: Callable[[str], None]) -> int:
    from mem0_mcp.config import load_settings

    settings = load_settings()  # a bad setting: main() says it in one line, exit 2
    configure_logging(settings.log_level)
    return doctor(settings, repair=args.repair)


def doctor(
    settings: Settings,
    *,
    repair: bool,
    embedder: Callable[[], Any] | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the findings (and repairs) for ``settings.data_dir`` to ``out``; the exit status.

    ``embedder`` builds the embedder that re-embeds set-aside rows (default: the configured one).
    """
    from mem0_mcp.engine.checks import check_stores
    from mem0_mcp.engine.repair import repair_stores, restore_readable_version

    out = out or sys.stdout
    if settings.store_remote:
        return _doctor_remote(settings, repair=repair, out=out)
    if not settings.data_dir.is_dir():
        print(
            f"mem0-mcp doctor: {settings.data_dir} does not exist (is MEM0_MCP_DATA_DIR right?)",
            file=sys.stderr,
        )
        return 2
    # The same findings are logged when the stores open: printed here, once.
    checks_log = logging.getLogger("mem0_mcp.engine.checks")
    level = checks_log.level
    checks_log.setLevel(logging.ERROR)
    try:
        storage = _open(settings)
        try:
            findings = storage.findings
            _print(findings, out, header="found" if repair and findings else None)
            if not repair or not any(f.repairable for f in findings):
                return 1 if findings else 0
            done = restore_readable_version(settings, storage)
            if done:
                storage.close()
                storage = _open(settings)
            if storage.read_only is None:
                done += repair_stores(storage, embedder)
            for step in done:
                print(step.line(), file=out)
            findings = check_stores(settings, storage.vectors, storage.history, storage.read_only)
            _print(findings, out, header="still")
            return 1 if findings else 0
        finally:
            storage.close()
    except Mem0Error as exc:
        print(f"mem0-mcp doctor: {exc}", file=sys.stderr)
        return 2
    finally:
        checks_log.setLevel(level)


def _doctor_remote(settings: Settings, *, repair: bool, out: TextIO) -> int:
    """On object storage: same-text duplicates only (the journal, the local files and the history
    checks belong to a data dir, and nodes may be writing meanwhile)."""
    from mem0_mcp.engine.duplicates import find_duplicates, merge_duplicates

    print(
        f"mem0-mcp doctor: {settings.store_shown} is on object storage: checking same-text duplicates "
        "(the other checks are for a data dir)",
        file=sys.stderr,
    )
    try:
        try:
            storage = _open(settings)
        except Mem0Error:
            raise
        except Exception as exc:  # LanceDB's own: a missing bucket, no access, no endpoint
            print(f"mem0-mcp doctor: cannot open {settings.store_shown}: {exc}", file=sys.stderr)
            return 2
        try:
            groups = find_duplicates(storage)
            if not groups:
                print("no duplicate memories", file=out)
                return 0
            for group in groups:
                print(f"found: {group.line()}" if repair else group.line(), file=out)
            if not repair:
                return 1
            merged = merge_duplicates(storage, groups)
            print(
                f"repaired memory table: {merged} duplicate memories marked superseded by the first "
                f'stored of their text (history: DELETE, source "doctor")',
                file=out,
            )
            left = find_duplicates(storage)
            for group in left:
                print(f"still: {group.line()}", file=out)
            return 1 if left else 0
        finally:
            storage.close()
    except Mem0Error as exc:
        print(f"mem0-mcp doctor: {exc}", file=sys.stderr)
        return 2


def _open(settings: Settings) -> Storage:
    from mem0_mcp.engine.storage import Storage

    return Storage(settings)


def _print(findings: list[Finding], out: TextIO, *, header: str | None) -> None:
    if not findings:
        print("all stores consistent", file=out)
        return
    for finding in findings:
        print(f"{header}: {finding.line()}" if header else finding.line(), file=out)
