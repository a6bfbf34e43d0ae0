"""The one module that touches the MCP SDK's private names; each use says why it is needed.

When the pinned ``mcp`` minor version moves, this is the file to check against the new SDK.
"""

from __future__ import annotations

from typing import Any

from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage


async def run_on_streams(
    server: MCPServer[Any],
    read_stream: MemoryObjectReceiveStream[SessionMessage | Exception],
    write_stream: MemoryObjectSendStream[SessionMessage],
) -> None:
    """Serve one connection of ``server`` over in-process streams until ``read_stream`` closes.

    Announces ``tools.listChanged``, which the stdio front relies on when the live tool list
    differs from the manifest it answered from.
    """
    # MCPServer runs stdio only over the process's own stdin/stdout (run_stdio_async) and offers
    # no public way to serve other streams; the stdio front owns the wire (it answers the
    # handshake from the manifest before the SDK is imported), so it drives the low-level
    # server, which MCPServer keeps in `_lowlevel_server` (mcp 2.3), over its own streams.
    lowlevel = server._lowlevel_server
    options = lowlevel.create_initialization_options(NotificationOptions(tools_changed=True))
    await lowlevel.run(read_stream, write_stream, options)
