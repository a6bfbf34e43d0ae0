"""``mem0-mcp ui``: the local page, on 127.0.0.1, at an address holding a secret made for this run.

The address is the one line written to stdout (scripts read it there); logs go to stderr.
Importing this module is cheap: the engine, Starlette and uvicorn load when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
from collections.abc import Callable


def add_ui_parser(commands: argparse._SubParsersAction) -> None:
    ui = commands.add_parser(
        "ui",
        help="browse, search, edit, delete and restore memories in a local web page",
        description="Serve a page on 127.0.0.1 for browsing and correcting the memories of "
        "MEM0_MCP_DATA_DIR. The address printed on stdout holds a secret made for this run: "
        "requests without it are refused. Changes are recorded in the history as made by a person.",
    )
    ui.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    ui.add_argument("--no-browser", action="store_true", help="print the address without opening a browser")
    ui.add_argument("--user-id", help="scope the page opens on (default: MEM0_MCP_USER_ID)")
    ui.add_argument("--agent-id")
    ui.add_argument("--run-id")


def run_ui(args: argparse.Namespace, configure_logging: Callable[[str], None]) -> int:
    from mem0_mcp.config import load_settings
    from mem0_mcp.errors import Mem0Error
    from mem0_mcp.models import Scope

    settings = load_settings()  # a bad setting: main() says it in one line, exit 2
    configure_logging(settings.log_level)
    scope = Scope(user_id=args.user_id, agent_id=args.agent_id, run_id=args.run_id)
    if scope.is_empty():
        scope = Scope(user_id=settings.user_id)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as exc:
        print(f"mem0-mcp ui: --port {args.port}: {exc.strerror}; choose another port", file=sys.stderr)
        return 1
    # Listening before the address is printed: a browser or script that opens it at once waits
    # in the backlog until uvicorn accepts, instead of being refused.
    sock.listen(128)
    port = sock.getsockname()[1]

    import uvicorn

    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.ui.app import PageConfig, create_app, new_secret

    try:
        memory = Memory(settings)
    except Mem0Error as exc:
        print(f"mem0-mcp ui: {exc}", file=sys.stderr)
        return 1
    secret = new_secret()
    hosts = (f"127.0.0.1:{port}", f"localhost:{port}")
    app = create_app(PageConfig(memory=memory, secret=secret, default_scope=scope, allowed_hosts=hosts))
    url = f"http://127.0.0.1:{port}/{secret}/"
    print(url, flush=True)
    log = logging.getLogger("mem0_mcp.cli.ui")
    log.info("local page for %s on %s (Ctrl-C ends it)", settings.data_dir, url)
    if not args.no_browser:
        import webbrowser

        with contextlib.suppress(Exception):  # no browser here: the printed address is enough
            webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        memory.close()
    return 0
