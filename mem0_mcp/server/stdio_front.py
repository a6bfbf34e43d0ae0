"""The stdio transport, with a handshake that does not wait for the MCP SDK to import.

Importing the SDK costs ~1.3 s on a small machine (its pydantic protocol models), more than the
one-second budget for ``initialize``. So the front answers ``initialize``, ``tools/list``, the
prompt and resource lists and ``ping`` from ``manifest.json`` (captured from the real server by ``python -m
mem0_mcp.server.stdio_front --write-manifest``) while the SDK, the server and the engine load in the
background. Once the real server runs, the front replays the client's ``initialize`` to it (and
drops that reply), then forwards every line. If the live tool list differs from the manifest,
the client gets ``notifications/tools/list_changed`` and re-lists.

This module imports nothing heavy at module level; stdout (fd 1) carries only JSON-RPC.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from mem0_mcp.server.wire_guard import (
    MAX_JSON_DEPTH,
    invalid_message_error,
    parse_lenient,
    too_deep,
    too_deep_error,
)

if TYPE_CHECKING:
    from mem0_mcp.server.state import MemoryServer

logger = logging.getLogger(__name__)

MANIFEST_PATH = Path(__file__).with_name("manifest.json")
# How long the end of input waits for the replies of calls in flight (an add through an LLM can
# take tens of seconds); past it the process exits without them.
DRAIN_SECONDS = 120.0
REPLAY_INIT_ID = "mem0-mcp/replay-initialize"
CHECK_TOOLS_ID = "mem0-mcp/check-tools"
LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not {"initialize", "tools_list", "handshake_versions"} <= data.keys():
        return None
    return data


def _valid_initialize(msg: dict[str, Any]) -> bool:
    params = msg.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("protocolVersion"), str):
        return False
    info = params.get("clientInfo")
    return (
        isinstance(params.get("capabilities"), dict)
        and isinstance(info, dict)
        and isinstance(info.get("name"), str)
        and isinstance(info.get("version"), str)
    )


class StdioFront:
    """Owns the wire: one reader thread, one lock around writes to the client."""

    def __init__(self, wire_in: BinaryIO, wire_out: BinaryIO, manifest: dict[str, Any] | None) -> None:
        self._in = wire_in
        self._out = wire_out
        self._manifest = manifest
        self._write_lock = threading.Lock()
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._fast = manifest is not None
        self._answered_initialize = False
        self.served_tools_from_manifest = False
        self.started = time.perf_counter()
        self.initialize_answered_after: float | None = None

    # ------------------------------------------------------------ reader thread
    def start(self) -> None:
        threading.Thread(target=self._read_loop, name="mcp-stdio-reader", daemon=True).start()

    def _read_loop(self) -> None:
        try:
            for raw in iter(self._in.readline, b""):
                line = raw.strip()
                if line:
                    self._take(line)
        except (OSError, ValueError):
            logger.debug("stdin closed", exc_info=True)
        finally:
            self._lines.put(None)

    def _take(self, line: bytes) -> None:
        """Answer one line here or queue it for the real server; no line ends the session."""
        if too_deep(line):
            # Nothing downstream may parse it: json recurses per level (issue #16).
            logger.warning("refused a JSON-RPC line nested deeper than %d levels", MAX_JSON_DEPTH)
            self.write(too_deep_error(line))
            return
        try:
            answered = self._answer_fast(line)
        except Exception:
            logger.exception("cannot read a line from the client")
            self.write(invalid_message_error(line))
            return
        if not answered:
            self._lines.put(line)

    def _answer_fast(self, line: bytes) -> bool:
        if not self._fast:
            return False
        assert self._manifest is not None
        try:
            msg = json.loads(line)
        except ValueError:
            return False
        if not isinstance(msg, dict):
            return False
        method, msg_id = msg.get("method"), msg.get("id")
        if not self._answered_initialize:
            if method != "initialize" or msg_id is None or not _valid_initialize(msg):
                # A 2026-era client (server/discover) or a malformed opening: the real server decides.
                self._fast = False
                return False
            requested = msg["params"]["protocolVersion"]
            versions = self._manifest["handshake_versions"]
            negotiated = requested if requested in versions else versions[-1]
            result = {**self._manifest["initialize"], "protocolVersion": negotiated}
            self.write({"jsonrpc": "2.0", "id": msg_id, "result": result})
            self.initialize_answered_after = time.perf_counter() - self.started
            self._answered_initialize = True
            # The real server still needs the handshake, under an id whose reply is dropped.
            self._lines.put(json.dumps({**msg, "id": REPLAY_INIT_ID}).encode())
            return True
        if msg_id is None:
            return False
        if (msg.get("params") or {}).get("cursor"):
            return False
        if method == "tools/list":
            self.write({"jsonrpc": "2.0", "id": msg_id, "result": self._manifest["tools_list"]})
            self.served_tools_from_manifest = True
            return True
        if method in self._manifest.get("other_lists", {}):
            self.write({"jsonrpc": "2.0", "id": msg_id, "result": self._manifest["other_lists"][method]})
            return True
        if method == "ping":
            self.write({"jsonrpc": "2.0", "id": msg_id, "result": {}})
            return True
        return False

    def end_input(self) -> None:
        """Stop as if the client closed stdin: queued requests still finish, then the server exits."""
        self._lines.put(None)

    def next_line(self) -> bytes | None:
        """Next line for the real server (blocking); None at end of input."""
        return self._lines.get()

    # ------------------------------------------------------------ writes
    def write(self, message: dict[str, Any]) -> None:
        self.write_raw(json.dumps(message, separators=(",", ":"), ensure_ascii=False))

    def write_raw(self, text: str) -> None:
        data = text.encode() + b"\n"
        with self._write_lock:
            self._out.write(data)
            self._out.flush()

    # ------------------------------------------------------------ hand-over to the real server
    def intercept(self, message: Any) -> bool:
        """True when a message from the real server answers the front's own requests."""
        msg_id = getattr(message, "id", None)
        if msg_id == REPLAY_INIT_ID:
            error = getattr(message, "error", None)
            if error is not None:
                logger.error("the server refused the replayed initialize: %s", error)
            return True
        if msg_id == CHECK_TOOLS_ID:
            live = message.model_dump(by_alias=True, exclude_unset=True, mode="json").get("result")
            if self._manifest is not None and live != self._manifest["tools_list"]:
                # Expected when settings add tools (graph); a stale manifest.json is caught by a test.
                logger.info("the live tool list differs from the manifest; telling the client to re-list")
                if self.served_tools_from_manifest:
                    self.write({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            return True
        return False

    def go_live(self) -> None:
        """From now on the real server answers everything (queued lines keep their order)."""
        self._fast = False


def claim_stdio() -> tuple[BinaryIO, BinaryIO]:
    """Take fds 0/1 for the wire; fd 1 then points at stderr so stray prints never corrupt it."""
    wire_in = os.fdopen(os.dup(0), "rb")
    wire_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return wire_in, wire_out


async def serve(server: MemoryServer, front: StdioFront) -> None:
    """Run the real server behind the front until the client closes stdin."""
    import anyio
    import anyio.to_thread
    import mcp_types as types
    from mcp.shared.message import SessionMessage

    from mem0_mcp.server.sdk_bridge import run_on_streams

    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    # Ids of the client's requests the server has not answered yet: at the end of input (stdin
    # closed, or SIGTERM) their replies are still owed, so the input closes only once they left.
    in_flight: set[Any] = set()

    async def drain() -> None:
        deadline = anyio.current_time() + DRAIN_SECONDS
        while in_flight and anyio.current_time() < deadline:
            await anyio.sleep(0.02)
        if in_flight:
            logger.warning("stopping with %d calls unanswered after %ss", len(in_flight), DRAIN_SECONDS)

    async def pump_in() -> None:
        async with read_writer:
            while True:
                line = await anyio.to_thread.run_sync(front.next_line, abandon_on_cancel=True)
                if line is None:
                    await drain()
                    return
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except Exception:
                    try:  # valid JSON the SDK's reader refuses (a lone surrogate, 200+ levels)
                        message = types.jsonrpc_message_adapter.validate_python(
                            parse_lenient(line), by_name=False
                        )
                    except Exception as exc:
                        # The SDK drops what it cannot parse; JSON-RPC wants an error the client can see.
                        logger.warning("malformed JSON-RPC from the client: %s", str(exc).splitlines()[0])
                        front.write(invalid_message_error(line))
                        continue
                if getattr(message, "method", None) is not None and getattr(message, "id", None) is not None:
                    in_flight.add(message.id)  # type: ignore[union-attr]
                await read_writer.send(SessionMessage(message))
                if (
                    front.served_tools_from_manifest
                    and getattr(message, "method", None) == "notifications/initialized"
                ):
                    check = {"jsonrpc": "2.0", "id": CHECK_TOOLS_ID, "method": "tools/list"}
                    await read_writer.send(
                        SessionMessage(types.jsonrpc_message_adapter.validate_python(check, by_name=False))
                    )

    async def pump_out() -> None:
        async with write_reader:
            async for session_message in write_reader:
                answered = session_message.message
                if front.intercept(answered):
                    # The answer to a request of the front's own (its replayed initialize).
                    in_flight.discard(getattr(answered, "id", None))
                    continue
                text = answered.model_dump_json(by_alias=True, exclude_unset=True)
                await anyio.to_thread.run_sync(front.write_raw, text)
                if getattr(answered, "method", None) is None:
                    in_flight.discard(getattr(answered, "id", None))

    front.go_live()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pump_in)
        tg.start_soon(pump_out)
        await run_on_streams(server, read_stream, write_stream)
        tg.cancel_scope.cancel()


# ---------------------------------------------------------------- manifest generation


async def capture_manifest(server: MemoryServer) -> dict[str, Any]:
    """What the real server answers to initialize and the list requests, as sent on the wire."""
    import anyio
    import mcp_types as types
    from mcp.shared.message import SessionMessage
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

    from mem0_mcp.server.sdk_bridge import run_on_streams

    # Buffered: all requests go in before any reply is read.
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](8)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](8)
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": LATEST_HANDSHAKE_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "manifest", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        *({"jsonrpc": "2.0", "id": i, "method": m} for i, m in enumerate(LISTS, start=2)),
    ]
    results: dict[int, Any] = {}

    async def drive() -> None:
        for req in requests:
            await read_writer.send(SessionMessage(types.jsonrpc_message_adapter.validate_python(req)))
        async for session_message in write_reader:
            data = json.loads(session_message.message.model_dump_json(by_alias=True, exclude_unset=True))
            if data.get("id") in range(1, len(LISTS) + 2):
                results[data["id"]] = data["result"]
            if len(results) == len(LISTS) + 1:
                await read_writer.aclose()
                return

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive)
            await run_on_streams(server, read_stream, write_stream)
    init = dict(results[1])
    init.pop("protocolVersion", None)
    return {
        "initialize": init,
        "tools_list": results[2],
        "other_lists": {m: results[i] for i, m in enumerate(LISTS, start=2) if m != "tools/list"},
        "handshake_versions": list(HANDSHAKE_PROTOCOL_VERSIONS),
    }


def manifest_server() -> MemoryServer:
    """The server as `mem0-mcp serve` builds it with default settings, minus the engine."""
    import tempfile

    from mem0_mcp.config import load_settings
    from mem0_mcp.server.app import create_server
    from mem0_mcp.server.engine_handle import EngineHandle

    class _NoEngine:
        def close(self) -> None:
            pass

    # The engine never opens, so the data dir is never created.
    settings = load_settings(data_dir=Path(tempfile.gettempdir()) / "mem0-mcp-manifest", transport="stdio")
    return create_server(settings, engine=EngineHandle(settings, factory=lambda s: _NoEngine()))  # type: ignore[arg-type,return-value]


def main(argv: list[str] | None = None) -> int:
    import argparse

    import anyio

    parser = argparse.ArgumentParser(description="Check or rewrite mem0_mcp/manifest.json.")
    parser.add_argument("--write-manifest", action="store_true", help="rewrite the manifest file")
    args = parser.parse_args(argv)
    live = anyio.run(capture_manifest, manifest_server())
    if args.write_manifest:
        MANIFEST_PATH.write_text(json.dumps(live, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {MANIFEST_PATH}")
        return 0
    current = load_manifest()
    if current != live:
        print(f"{MANIFEST_PATH} is stale; run: python -m mem0_mcp.server.stdio_front --write-manifest")
        return 1
    print(f"{MANIFEST_PATH} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
