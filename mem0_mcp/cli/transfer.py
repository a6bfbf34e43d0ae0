"""``mem0-mcp export|import``: back up a data dir as JSON Lines and bring memories in.

The format and its checks live in the engine (engine/transfer.py, engine/migrate.py); this
module parses the arguments and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mem0_mcp.cli import output
from mem0_mcp.cli.memories import given_scope, run_engine_command, scope_of, scope_options

if TYPE_CHECKING:
    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.engine.transfer import ImportReport

TRANSFER_COMMANDS = ("export", "import")
SOURCES = ("mem0-mcp", "memory-server", "mem0", "chat")


def add_transfer_parsers(commands: argparse._SubParsersAction) -> None:
    common = scope_options()
    export = commands.add_parser(
        "export",
        parents=[common],
        help="write every memory, its history and the graph as JSON Lines (a backup)",
        description="Write the data dir as JSON Lines (README: 'Export format'): every memory with "
        "its history, deleted memories' history, and the graph when it is on. With scope flags, "
        "only the memories of that scope; without, everything.",
    )
    export.add_argument("--out", "-o", type=Path, metavar="FILE", help="file to write (default: stdout)")
    imp = commands.add_parser(
        "import",
        parents=[common],
        help="import an export (idempotent), or migrate from the MCP memory server, Mem0 or a chat",
        description="Import FILE ('-': stdin). --from mem0-mcp (default): an export of this tool; "
        "ids already stored are skipped, bad lines are reported with their numbers and the good "
        "ones imported. --from memory-server: the reference MCP memory server's memory.json "
        "(entities with observations, relations), into the scope given. --from mem0: Mem0's "
        'get_all() output saved as JSON ({"results": [...]} or the older bare list) or '
        "OpenMemory's backup (the zip, its memories.json, or memories.jsonl[.gz]), into the scope "
        "given, keeping times and the mem0 id (metadata.mem0_id); deleted and archived memories "
        "are left out unless --include-inactive; importing it again adds nothing. --from chat: a "
        "JSON list of {role, content} messages, added as one conversation into the scope given.",
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--from", dest="source", choices=SOURCES, default="mem0-mcp")
    imp.add_argument("--batch-size", type=int, metavar="N", help="memories per embedding batch")
    imp.add_argument("--infer", action="store_true", help="--from chat: run the LLM memory manager")
    imp.add_argument(
        "--include-inactive",
        action="store_true",
        help="--from mem0: import deleted and archived memories too (marked in metadata.mem0_state)",
    )


def run_transfer_command(args: argparse.Namespace) -> int:
    """Run export or import; the exit status (1 when a line was bad or the engine failed)."""
    if args.command == "export":
        return run_engine_command("export", lambda memory, settings: _export(memory, args))
    if args.batch_size is not None and args.batch_size < 1:
        print("mem0-mcp import: --batch-size must be at least 1", file=sys.stderr)
        return 2
    if args.file != "-" and not Path(args.file).is_file():
        return output.fail("import", f"FILE: {args.file} does not exist or is not a file")
    return run_engine_command("import", lambda memory, settings: _import(memory, settings, args))


def _export(memory: Memory, args: argparse.Namespace) -> int:
    from mem0_mcp.engine.transfer import export_memories

    with output.progress_bar("export") as update:
        if args.out is None:
            counts = export_memories(memory, sys.stdout, scope=given_scope(args), progress=update)
        else:
            with args.out.open("w", encoding="utf-8") as out:
                counts = export_memories(memory, out, scope=given_scope(args), progress=update)
    where = "" if args.out is None else f" to {args.out}"
    graph = f", {counts.entities} entities, {counts.relations} relations" if memory.graph is not None else ""
    print(f"exported {counts.memories} memories, {counts.deleted} deleted{graph}{where}", file=sys.stderr)
    return 0


def _open(path: str) -> TextIO:
    return sys.stdin if path == "-" else open(path, encoding="utf-8")


def _import(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    from mem0_mcp.engine import migrate
    from mem0_mcp.engine.transfer import import_memories

    if args.source == "mem0":
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        with output.progress_bar("import") as update:
            report = migrate.from_mem0(
                memory, data, scope_of(args, settings), include_inactive=args.include_inactive,
                batch_size=args.batch_size, progress=update,
            )  # fmt: skip
        return _print_report(report, args.json)
    stream = _open(args.file)
    try:
        with output.progress_bar("import") as update:
            if args.source == "mem0-mcp":
                report = import_memories(memory, stream, batch_size=args.batch_size, progress=update)
            elif args.source == "memory-server":
                report = migrate.from_memory_server(memory, stream.read(), scope_of(args, settings))
            else:
                report = migrate.from_chat(memory, stream.read(), scope_of(args, settings), infer=args.infer)
    finally:
        if stream is not sys.stdin:
            stream.close()
    return _print_report(report, args.json)


def _print_report(report: ImportReport, as_json: bool) -> int:
    from dataclasses import asdict

    if as_json:
        output.print_json(asdict(report))
    err = output.console(stderr=True)
    for bad in report.bad:
        err.print(f"line {bad.line}: {output.escape(bad.message)}")
    parts = [f"imported {report.imported} memories"]
    if report.deleted:
        parts.append(f"{report.deleted} deleted memories' history")
    if report.skipped:
        parts.append(f"skipped {report.skipped} already stored")
    if report.entities or report.relations:
        parts.append(f"{report.entities} entities, {report.relations} relations")
    if report.graph_skipped:
        parts.append(
            f"left out {report.graph_skipped} graph lines (the graph is off: MEM0_MCP_GRAPH_ENABLED=true)"
        )
    if report.inactive:
        parts.append(f"left out {report.inactive} deleted or archived (--include-inactive imports them)")
    if report.bad:
        parts.append(f"{len(report.bad)} bad lines")
    err.print(output.escape("; ".join(parts)))
    return 1 if report.bad else 0
