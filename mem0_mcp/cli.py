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
from mem0_mcp.errors import ConfigError

if TYPE_CHECKING:
    from mem0_mcp.config import Settings
    from mem0_mcp.engine_handle import EngineHandle
    from mem0_mcp.stdio_front import StdioFront

_STARTED = time.perf_counter()

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    from mem0_mcp.graph_cli import add_graph_parser

    add_graph_parser(commands)
    return parser


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
        from mem0_mcp import stdio_front

        wire_in, wire_out = stdio_front.claim_stdio()
        front = stdio_front.StdioFront(wire_in, wire_out, stdio_front.load_manifest())
        front.start()

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
    except ConfigError as exc:
        print(f"mem0-mcp: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    from mem0_mcp.engine_handle import EngineHandle

    engine = EngineHandle(settings)
    if front is not None:
        return _serve_stdio(settings, engine, front)
    return _serve_http(settings, engine, args)


def _serve_http(settings: Settings, engine: EngineHandle, args: argparse.Namespace) -> int:
    try:
        from mem0_mcp.server import create_server, serve_http

        server = create_server(settings, engine=engine)
    except ConfigError as exc:
        print(f"mem0-mcp: {exc}", file=sys.stderr)
        return 2
    import anyio

    logging.getLogger("mem0_mcp.cli").info(
        "mem0-mcp %s serving %s on http://%s:%s",
        __version__,
        settings.transport,
        settings.host,
        settings.port,
    )
    with contextlib.suppress(KeyboardInterrupt):
        if args.allowed_host:
            # --allowed-host adds to the allowed_hosts setting (environment or config file).
            overrides["allowed_hosts"] = [*settings.allowed_hosts, *args.allowed_host]
            settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
        anyio.run(
            # The allowed_hosts setting holds the --allowed-host values too (see serve).
            lambda: serve_http(server, transport=settings.transport, path=args.path)
        )
    # The engine is closed by now; skip interpreter teardown, as on stdio (see _serve_stdio).
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


def _serve_stdio(settings: Settings, engine: EngineHandle, front: StdioFront) -> int:
    engine.start()

    import anyio

    from mem0_mcp import stdio_front
    from mem0_mcp.server import create_server

    server = create_server(settings, engine=engine)
    logging.getLogger("mem0_mcp.cli").info(
        "mem0-mcp %s on stdio (data_dir %s); initialize answered after %s, MCP server up after %.2fs",
        __version__,
        settings.data_dir,
        "-" if front.initialize_answered_after is None else f"{front.initialize_answered_after:.3f}s",
        time.perf_counter() - _STARTED,
    )

    def shut_down(signum: int, _frame: object) -> None:
        # Claude Desktop sends SIGTERM on quit: finish what is in flight (no half-done write),
        # then exit. A second signal kills at once.
        signal.signal(signum, signal.SIG_DFL)
        front.end_input()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(stdio_front.serve, server, front)
    logging.shutdown()
    sys.stderr.flush()
    # Daemon threads may still be importing torch; skipping interpreter teardown avoids crashes there.
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if not argv or (argv[0].startswith("--") and argv[0] not in ("--help", "--version")):
        # Plain `mem0-mcp [serve options]` serves, as MCP client configs often omit the subcommand.
        argv = ["serve", *argv]
    elif argv[0] not in commands and argv[0] not in ("-h", "--help", "--version"):
        parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(commands)}")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "graph":
        from mem0_mcp.graph_cli import run_graph_command

        return run_graph_command(args)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
