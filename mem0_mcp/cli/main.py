"""The ``mem0-mcp`` command.

``mem0-mcp serve`` (or plain ``mem0-mcp``) speaks MCP over stdio, the way Claude Desktop and IDE
agents launch it; ``--transport http`` or ``--transport sse`` serves remote agents with bearer
tokens. The MCP SDK is imported only on the paths that need it, and after the stdio front is
already answering, so the handshake stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mem0_mcp import __version__
from mem0_mcp.cli.memories import MEMORY_COMMANDS
from mem0_mcp.cli.transfer import TRANSFER_COMMANDS
from mem0_mcp.errors import ConfigError

if TYPE_CHECKING:
    from mem0_mcp.config import Settings
    from mem0_mcp.server.engine_handle import EngineHandle
    from mem0_mcp.server.stdio_front import StdioFront

_STARTED = time.perf_counter()

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
COMMANDS = (
    "serve",
    "graph",
    "reindex",
    "doctor",
    *MEMORY_COMMANDS,
    *TRANSFER_COMMANDS,
    "ui",
    "warmup",
    "install",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mem0-mcp", description="Long-term memory for AI agents over the Model Context Protocol."
    )
    parser.add_argument("--version", action="version", version=f"mem0-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    serve = commands.add_parser(
        "serve",
        help="run the MCP server (default: stdio)",
        description="Run the MCP server. Settings come from MEM0_MCP_* environment variables and "
        "MEM0_MCP_CONFIG_FILE; these options override them.",
    )
    add_serve_options(serve)
    from mem0_mcp.cli.graph import add_graph_parser

    add_graph_parser(commands)
    add_reindex_parser(commands)
    from mem0_mcp.cli.doctor import add_doctor_parser

    add_doctor_parser(commands)
    from mem0_mcp.cli.memories import add_memory_parsers
    from mem0_mcp.cli.transfer import add_transfer_parsers

    add_memory_parsers(commands)
    add_transfer_parsers(commands)
    from mem0_mcp.cli.ui import add_ui_parser

    add_ui_parser(commands)
    from mem0_mcp.cli.install import add_install_parser
    from mem0_mcp.cli.warmup import add_warmup_parser

    add_warmup_parser(commands)
    add_install_parser(commands)
    assert tuple(commands.choices) == COMMANDS, "COMMANDS lists every subcommand"
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100000, got {value}")
    return value


def add_reindex_parser(commands: argparse._SubParsersAction) -> None:
    reindex = commands.add_parser(
        "reindex",
        help="re-embed every memory with the configured embedding model (MEM0_MCP_EMBEDDER_MODEL)",
        description="Re-embed every memory of MEM0_MCP_DATA_DIR with MEM0_MCP_EMBEDDER_MODEL, after "
        "changing the model. The old table stays in place until the new one is complete; the "
        "history is kept. Servers on the same data dir must be restarted with the new model after.",
    )
    reindex.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help="memories per embedding batch (default MEM0_MCP_EMBEDDING_BATCH_SIZE)",
    )
    reindex.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    reindex.add_argument(
        "--force", action="store_true", help="re-embed even when the store already uses the configured model"
    )


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport",
        choices=["stdio", "sse", "http"],
        help="stdio (default) for local clients; http (streamable HTTP) or sse for remote agents",
    )
    parser.add_argument("--host", help="address to bind for http/sse (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port for http/sse (default 8765)")
    parser.add_argument("--path", help="endpoint path: /mcp for http, /sse for sse by default")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="extra Host header value accepted by the DNS-rebinding check (repeatable), "
        "e.g. the public name of a reverse proxy",
    )
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])


def configure_logging(level: str) -> None:
    # stdout belongs to JSON-RPC on stdio: every log line goes to stderr.
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    for noisy in ("httpx", "httpx2", "sse_starlette", "mcp.server.lowlevel.server"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _surely_stdio(args: argparse.Namespace) -> bool:
    """Whether stdio is certain before settings load (a config file could say otherwise)."""
    if args.transport is not None:
        return bool(args.transport == "stdio")
    return os.environ.get("MEM0_MCP_TRANSPORT", "stdio") == "stdio" and not os.environ.get(
        "MEM0_MCP_CONFIG_FILE"
    )


def serve(args: argparse.Namespace) -> int:
    front = None
    if _surely_stdio(args):
        # The handshake is answered from the manifest while everything else loads, settings included.
        from mem0_mcp.server import stdio_front

        wire_in, wire_out = stdio_front.claim_stdio()
        front = stdio_front.StdioFront(wire_in, wire_out, stdio_front.load_manifest())
        front.start()
        _finish_on_signal(front)

    from mem0_mcp.config import load_settings

    overrides = {
        "transport": args.transport,
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
    }
    if args.path is not None and args.transport in (None, "http"):
        overrides["http_path"] = args.path
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
        if args.allowed_host:
            # --allowed-host adds to the allowed_hosts setting (environment or config file).
            overrides["allowed_hosts"] = [*settings.allowed_hosts, *args.allowed_host]
            settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        print(f"mem0-mcp: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    from mem0_mcp.server.engine_handle import EngineHandle

    engine = EngineHandle(settings)
    if front is not None:
        return _serve_stdio(settings, engine, front)
    return _serve_http(settings, engine, args)


def _serve_http(settings: Settings, engine: EngineHandle, args: argparse.Namespace) -> int:
    try:
        from mem0_mcp.server.app import create_server
        from mem0_mcp.server.http_app import serve_http

        server = create_server(settings, engine=engine)
    except ConfigError as exc:
        print(f"mem0-mcp: {exc}", file=sys.stderr)
        return 2
    import anyio

    logging.getLogger("mem0_mcp.cli.main").info(
        "mem0-mcp %s serving %s on http://%s:%s",
        __version__,
        settings.transport,
        settings.host,
        settings.port,
    )
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(
            # The allowed_hosts setting holds the --allowed-host values too (see serve).
            lambda: serve_http(server, transport=settings.transport, path=args.path)
        )
    # The engine is closed by now; skip interpreter teardown, as on stdio (see _serve_stdio).
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


def _finish_on_signal(front: StdioFront) -> None:
    """SIGTERM or SIGINT ends the input: calls already read are answered, then the process exits.

    Claude Desktop sends SIGTERM on quit, possibly while the server is still loading: installed
    as soon as the front reads stdin, so no call already sent is lost. A second signal kills.
    """

    def shut_down(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)
        front.end_input()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)


def _serve_stdio(settings: Settings, engine: EngineHandle, front: StdioFront) -> int:
    engine.start()

    import anyio

    from mem0_mcp.server import stdio_front
    from mem0_mcp.server.app import create_server

    server = create_server(settings, engine=engine)
    logging.getLogger("mem0_mcp.cli.main").info(
        "mem0-mcp %s on stdio (data_dir %s); initialize answered after %s, MCP server up after %.2fs",
        __version__,
        settings.data_dir,
        "-" if front.initialize_answered_after is None else f"{front.initialize_answered_after:.3f}s",
        time.perf_counter() - _STARTED,
    )

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(stdio_front.serve, server, front)
    logging.shutdown()
    sys.stderr.flush()
    # Daemon threads may still be importing torch; skipping interpreter teardown avoids crashes there.
    os._exit(0)


def run_reindex(args: argparse.Namespace) -> int:
    """``mem0-mcp reindex``: 0 done or nothing to do, 1 failed or declined, 2 nothing to re-embed."""
    from mem0_mcp.config import load_settings
    from mem0_mcp.errors import Mem0Error

    settings = load_settings()  # a bad setting: main() says it in one line, exit 2
    configure_logging(settings.log_level)
    from mem0_mcp.engine import reindex as rx

    try:
        info = rx.inspect_store(settings)
    except Mem0Error as exc:
        print(f"mem0-mcp reindex: {exc}", file=sys.stderr)
        return 2
    new_model = settings.embedder_model
    if not info.has_table and info.model is None:
        print(
            f"mem0-mcp reindex: {settings.data_dir} holds no memories: nothing to re-embed "
            "(is MEM0_MCP_DATA_DIR the right folder?)",
            file=sys.stderr,
        )
        return 2
    if info.model == new_model and not args.force:
        print(
            f"mem0-mcp reindex: {settings.data_dir} is already embedded with {new_model!r}: nothing to do "
            "(--force re-embeds anyway)",
            file=sys.stderr,
        )
        return 0
    old_model = "an interrupted reindex" if info.interrupted else repr(info.model or "an unrecorded model")
    if not args.yes:
        what = f"re-embed {info.rows} memories of {settings.data_dir} with {new_model!r} (now: {old_model})"
        if not sys.stdin.isatty():
            print(f"mem0-mcp reindex: would {what}; pass --yes to confirm", file=sys.stderr)
            return 2
        print(
            f"{what[0].upper()}{what[1:]}? Servers on this data dir will have to be restarted with the "
            "new model. [y/N] ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("mem0-mcp reindex: cancelled; nothing was changed", file=sys.stderr)
            return 1

    from mem0_mcp.cli import output

    try:
        # A bar on a terminal; in a log, a line per tenth of the memories.
        with output.progress_bar("reindex", lines=True) as update:
            result = rx.reindex(
                settings,
                batch_size=args.batch_size,
                force=args.force,
                progress=lambda done, total: update(done, total, "memories"),
            )
    except Mem0Error as exc:
        print(f"mem0-mcp reindex: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, rx.EmptyStoreError) else 1
    if not result.done:
        print(f"mem0-mcp reindex: {result.message}", file=sys.stderr)
        return 0
    if result.new_dimension is None:
        print(f"mem0-mcp reindex: {result.message}", file=sys.stderr)
        return 0
    print(
        f"reindexed {result.rows} memories in {result.seconds:.1f}s: "
        f"{result.old_model} ({result.old_dimension}-d) -> {result.new_model} ({result.new_dimension}-d)"
    )
    if result.old_model != result.new_model:
        print(
            f"mem0-mcp reindex: restart servers on {settings.data_dir} with "
            f"MEM0_MCP_EMBEDDER_MODEL={new_model}",
            file=sys.stderr,
        )
    if settings.graph_on_disk and result.old_model != result.new_model:
        print(
            "mem0-mcp reindex: the entity graph keeps the old model's vectors; re-derive it with "
            "`mem0-mcp graph rebuild --user-id ...` for each scope",
            file=sys.stderr,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = COMMANDS
    if not argv or (argv[0].startswith("--") and argv[0] not in ("--help", "--version")):
        # Plain `mem0-mcp [serve options]` serves, as MCP client configs often omit the subcommand.
        argv = ["serve", *argv]
    elif argv[0] not in commands and argv[0] not in ("-h", "--help", "--version"):
        parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(commands)}")
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except ConfigError as exc:  # a setting found bad past the first checks: one line, never a traceback
        print(f"mem0-mcp {args.command}: {exc}".replace("\n", " "), file=sys.stderr)
        return 2


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "serve":
        return serve(args)
    if args.command == "graph":
        from mem0_mcp.cli.graph import run_graph_command

        return run_graph_command(args)
    if args.command == "reindex":
        return run_reindex(args)
    if args.command == "doctor":
        from mem0_mcp.cli.doctor import run_doctor

        return run_doctor(args, configure_logging)
    if args.command in MEMORY_COMMANDS:
        from mem0_mcp.cli.memories import run_memory_command

        return run_memory_command(args)
    if args.command in TRANSFER_COMMANDS:
        from mem0_mcp.cli.transfer import run_transfer_command

        return run_transfer_command(args)
    if args.command == "ui":
        from mem0_mcp.cli.ui import run_ui

        return run_ui(args, configure_logging)
    if args.command == "warmup":
        from mem0_mcp.cli.warmup import run_warmup

        return run_warmup(args, configure_logging)
    if args.command == "install":
        from mem0_mcp.cli.install import run_install

        return run_install(args)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
