"""``mem0-mcp add|search|list|get|update|delete|restore|history|stats``: the memories, for people.

Each command opens the data dir through the engine, as the server does (same locks, so it is
safe beside a running server), and records its changes with ``source="person"``. Human output
by default, the engine's models as JSON with ``--json``. Exit status: 0 done, 1 the engine
refused or failed (one line on stderr naming the field and the fix), 2 wrong usage.

Importing this module is cheap (the CLI builds its parser on every start): the engine is
imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mem0_mcp.cli import output

if TYPE_CHECKING:
    from mem0_mcp.config import Settings
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.engine.transfer import Embedder
    from mem0_mcp.models import Scope

MEMORY_COMMANDS = ("add", "search", "list", "get", "history", "restore", "update", "delete", "stats")


def scope_options() -> argparse.ArgumentParser:
    """The flags every people command takes: the scope, and --json."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("scope (default: --user-id from MEM0_MCP_USER_ID, as the server)")
    group.add_argument("--user-id", metavar="U")
    group.add_argument("--agent-id", metavar="A")
    group.add_argument("--run-id", metavar="R")
    common.add_argument("--json", action="store_true", help="print the engine's JSON instead of a table")
    return common


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f'not JSON: {exc.msg} (e.g. \'{{"topic": "food"}}\')') from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"topic": "food"}\'')
    return value


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_memory_parsers(commands: argparse._SubParsersAction) -> None:
    common = scope_options()

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".",
                                   parents=[common])  # fmt: skip

    add = command("add", "remember a text (verbatim unless an LLM is configured and --infer)")
    add.add_argument("text", nargs="+", metavar="TEXT", help="the text ('-' reads it from stdin)")
    add.add_argument("--metadata", type=_json_object, metavar="JSON", help="a JSON object kept with it")
    add.add_argument("--memory-type", metavar="TYPE", help="e.g. procedural (agent scopes)")
    add.add_argument("--timestamp", metavar="WHEN", help="when it happened: ISO 8601 or epoch seconds")
    add.add_argument("--supersedes", nargs="+", default=None, metavar="ID", help="ids it replaces")
    infer = add.add_mutually_exclusive_group()
    infer.add_argument("--infer", dest="infer", action="store_true", default=None,
                       help="extract facts with the configured LLM")  # fmt: skip
    infer.add_argument("--no-infer", dest="infer", action="store_false", help="store the text as given")

    search = command("search", "the memories of a scope that best match a query")
    search.add_argument("query", nargs="+", metavar="QUERY")
    search.add_argument("--limit", type=_limit, metavar="N", help="at most N results")
    search.add_argument("--threshold", type=float, metavar="S", help="drop results scoring under S (0-1)")
    search.add_argument("--filters", type=_json_object, metavar="JSON", help="metadata filters")
    search.add_argument("--actor-id", metavar="ACTOR")
    search.add_argument("--include-superseded", action="store_true")

    listing = command("list", "a scope's memories, newest first")
    listing.add_argument("--limit", type=_limit, default=50, metavar="N", help="at most N (default 50)")
    listing.add_argument("--offset", type=int, default=0, metavar="K", help="skip the first K")
    listing.add_argument("--filters", type=_json_object, metavar="JSON", help="metadata filters")
    listing.add_argument("--actor-id", metavar="ACTOR")
    listing.add_argument("--include-superseded", action="store_true")

    for name, what in (
        ("get", "show one memory"),
        ("history", "every change of a memory, deleted ones too"),
        ("restore", "undo the latest change of a memory (an edit, a delete, a supersede)"),
    ):
        command(name, what).add_argument("id", metavar="ID")
    update = command("update", "give a memory new text and/or metadata (its history keeps the old)")
    update.add_argument("id", metavar="ID")
    update.add_argument("--text", metavar="TEXT", help="the new text")
    update.add_argument("--metadata", type=_json_object, metavar="JSON", help="replaces its metadata")
    delete = command("delete", "delete memories by id (their history stays; `restore` brings one back)")
    delete.add_argument("ids", nargs="*", metavar="ID")
    delete.add_argument("--all", action="store_true", help="delete every memory of the scope")
    delete.add_argument("--yes", "-y", action="store_true", help="confirm --all")
    command("stats", "counts and identity of the data dir: memories, embedder, LLM, graph")


# --------------------------------------------------------------------------- opening the engine
def make_embedder(settings: Settings) -> Embedder:
    """The configured embedder, loaded on first use (list, get, history, export never load it)."""
    from mem0_mcp.engine.transfer import lazy_embedder

    return lazy_embedder(settings)


def open_memory(settings: Settings) -> Memory:
    """The engine on the configured data dir, as the server opens it."""
    from mem0_mcp.engine.memory import Memory

    return Memory(settings, embedder=make_embedder(settings))


def load(command: str) -> Settings | None:
    """The settings (None after printing why they are invalid); logs go to stderr, warnings only."""
    from mem0_mcp.config import load_settings
    from mem0_mcp.errors import ConfigError

    try:
        settings = load_settings()
    except ConfigError as exc:
        output.fail(command, exc)
        return None
    level = settings.log_level if settings.log_level in ("DEBUG", "ERROR", "CRITICAL") else "WARNING"
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    return settings


def given_scope(args: argparse.Namespace) -> Scope | None:
    """The scope the flags name, or None when they name none."""
    from mem0_mcp.models import Scope

    scope = Scope(user_id=args.user_id, agent_id=args.agent_id, run_id=args.run_id)
    return None if scope.is_empty() else scope


def scope_of(args: argparse.Namespace, settings: Settings) -> Scope:
    """The flags' scope, or the default user's (MEM0_MCP_USER_ID), as the server over stdio."""
    from mem0_mcp.models import Scope

    return given_scope(args) or Scope(user_id=settings.user_id)


def run_engine_command(command: str, body: Callable[[Memory, Settings], int]) -> int:
    """Open the engine, run ``body``, close it; engine errors become one line and status 1."""
    from mem0_mcp.errors import Mem0Error

    settings = load(command)
    if settings is None:
        return 1
    try:
        memory = open_memory(settings)
    except Mem0Error as exc:
        return output.fail(command, exc)
    try:
        return body(memory, settings)
    except Mem0Error as exc:
        return output.fail(command, exc)
    finally:
        memory.close()


# --------------------------------------------------------------------------- the commands
def run_memory_command(args: argparse.Namespace) -> int:
    """Run one of MEMORY_COMMANDS; its exit status."""
    handler = _HANDLERS[args.command]
    if args.command == "delete" and not _delete_usage_ok(args):
        return 2
    return run_engine_command(args.command, lambda memory, settings: handler(memory, settings, args))


def _add(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == ["-"] else " ".join(args.text)
    scope = scope_of(args, settings)
    result = memory.add(
        text,
        **scope.model_dump(),
        metadata=args.metadata,
        infer=args.infer,
        memory_type=args.memory_type,
        timestamp=args.timestamp,
        supersedes=args.supersedes,
        source="person",
    )
    if args.json:
        output.print_json(result)
    else:
        output.add_table(result)
        if result.reason and args.infer:
            output.console(stderr=True).print(f"verbatim: {result.reason}")
    return 0


def _search(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    scope = scope_of(args, settings)
    result = memory.search(
        " ".join(args.query),
        **scope.model_dump(),
        actor_id=args.actor_id,
        filters=args.filters,
        limit=args.limit,
        threshold=args.threshold,
        include_superseded=args.include_superseded,
    )
    if args.json:
        output.print_json(result)
    elif not result.results:
        output.console(stderr=True).print("no memory matches")
    else:
        output.memories_table(result.results, scores=True)
    return 0


def _list(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    scope = scope_of(args, settings)
    page = memory.get_all(
        **scope.model_dump(),
        actor_id=args.actor_id,
        filters=args.filters,
        limit=min(args.limit, settings.max_limit),
        offset=args.offset,
        include_superseded=args.include_superseded,
    )
    if args.json:
        output.print_json(page)
        return 0
    shown = f"{page.offset + 1}-{page.offset + len(page.results)} of {page.total}" if page.results else "none"
    desc = ", ".join(f"{k}={v}" for k, v in scope.as_dict().items())
    output.memories_table(page.results, title=f"memories of {desc} ({shown})")
    if page.next_offset is not None:
        output.console(stderr=True).print(f"more: --offset {page.next_offset}")
    return 0


def _get(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    item = memory.get(args.id, scope=given_scope(args))
    output.print_json(item) if args.json else output.memory_detail(item)
    return 0


def _update(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    item = memory.update(
        args.id, text=args.text, metadata=args.metadata, scope=given_scope(args), source="person"
    )
    output.print_json(item) if args.json else output.memory_detail(item)
    return 0


def _delete_usage_ok(args: argparse.Namespace) -> bool:
    if args.all and args.ids:
        print("mem0-mcp delete: give ids or --all, not both", file=sys.stderr)
        return False
    if not args.all and not args.ids:
        print("mem0-mcp delete: give the id(s) to delete, or --all for the whole scope", file=sys.stderr)
        return False
    if args.all and not args.yes:
        print(
            "mem0-mcp delete: --all deletes every memory of the scope; add --yes to confirm", file=sys.stderr
        )
        return False
    return True


def _delete(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    if args.all:
        results = [memory.delete_all(**scope_of(args, settings).model_dump(), source="person")]
    else:
        results = [memory.delete(i, scope=given_scope(args), source="person") for i in args.ids]
    if args.json:
        output.print_json(results if len(results) > 1 else results[0])
    else:
        for r in results:
            output.console().print(output.escape(r.message))
    return 0


def _restore(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    result = memory.restore(args.id, scope=given_scope(args), source="person")
    if args.json:
        output.print_json(result)
        return 0
    output.console().print(output.escape(result.message))
    if result.memory is not None:
        output.memory_detail(result.memory)
    return 0


def _history(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    entries = memory.history(args.id, scope=given_scope(args))
    output.print_json(entries) if args.json else output.history_table(entries)
    return 0


def _stats(memory: Memory, settings: Settings, args: argparse.Namespace) -> int:
    stats = memory.stats()
    if args.json:
        output.print_json(stats)
    else:
        # The command embeds nothing, so it never loads the model: whether this process has it
        # loaded says nothing to a person; the model the store was built with does.
        name = stats.embedder.split(" (")[0]
        output.stats_table(stats.model_copy(update={"embedder": name}), skip=("embedder_ready",))
    return 0


_HANDLERS: dict[str, Callable[[Memory, Settings, argparse.Namespace], int]] = {
    "add": _add,
    "search": _search,
    "list": _list,
    "get": _get,
    "update": _update,
    "delete": _delete,
    "restore": _restore,
    "history": _history,
    "stats": _stats,
}
