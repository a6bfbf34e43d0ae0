"""The HTTP transports (streamable HTTP and SSE): the Starlette app, Host/Origin checks, /health.

Bearer-token auth is set up by ``create_server`` (see ``auth.http_auth``); this module builds
the app around the server, keeps the engine open for the app's life and runs uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mem0_mcp import __version__
from mem0_mcp.config import Settings
from mem0_mcp.errors import ConfigError
from mem0_mcp.server.state import MemoryServer

if TYPE_CHECKING:
    from starlette.applications import Starlette


def add_health_route(server: MemoryServer) -> None:
    """``GET /health``: 200 while the engine opens or is ready, 503 when it failed to open."""
    engine = server.memory_state.engine

    @server.custom_route("/health", methods=["GET"])
    async def health(_: Request) -> Response:
        status = "ready" if engine.ready else ("failed" if engine.failed else "opening")
        settings = server.memory_state.settings
        return JSONResponse(
            {
                "status": "ok" if status != "failed" else "error",
                "engine": status,
                "version": __version__,
                # Which store this node serves, so a balancer's operator can tell nodes apart.
                "store": settings.store_shown,
                "stateless": settings.http_stateless,
            },
            status_code=200 if status != "failed" else 503,
        )


def transport_security(settings: Settings, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """Host/Origin allow-lists against DNS rebinding: loopback names, the bound host, and extras
    (the ``allowed_hosts`` setting, then ``allowed_hosts`` given here)."""
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    bound = f"[{settings.host}]" if ":" in settings.host else settings.host
    if bound not in ("0.0.0.0", "[::]"):
        hosts.append(bound)
    hosts = list(dict.fromkeys([*hosts, *settings.allowed_hosts, *allowed_hosts]))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*hosts, *(f"{h}:*" for h in hosts)],
        allowed_origins=[
            f"{scheme}://{h}{port}" for h in hosts for scheme in ("http", "https") for port in ("", ":*")
        ],
    )


def build_http_app(
    server: MemoryServer,
    *,
    transport: str,
    path: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> Starlette:
    """The Starlette app for ``sse`` or ``http`` (streamable HTTP), holding the engine open for its life.

    Paths: streamable HTTP on ``path`` (default ``settings.http_path``, /mcp); SSE on ``path``
    (default /sse) with messages posted to /messages/.

    Raises:
        ConfigError: ``transport`` is not an HTTP transport.
    """
    settings = server.memory_state.settings
    security = transport_security(settings, allowed_hosts)
    if settings.http_stateless and transport == "sse":
        raise ConfigError(
            "http_stateless: SSE is a session held by one server; use --transport http with "
            "MEM0_MCP_HTTP_STATELESS=true, or turn it off for SSE"
        )
    if settings.http_stateless and settings.llm_provider == "sampling":
        raise ConfigError(
            "http_stateless: a stateless server cannot call the client back, and MCP sampling needs "
            "that; set MEM0_MCP_LLM_PROVIDER to anthropic, openai_compatible or none, or turn "
            "MEM0_MCP_HTTP_STATELESS off"
        )
    if transport == "sse":
        app = server.sse_app(
            sse_path=path or "/sse",
            message_path="/messages/",
            max_request_body_size=settings.max_request_bytes,
            transport_security=security,
            host=settings.host,
        )
    elif transport == "http":
        app = server.streamable_http_app(
            streamable_http_path=path or settings.http_path,
            stateless_http=settings.http_stateless,
            max_request_body_size=settings.max_request_bytes,
            transport_security=security,
            host=settings.host,
        )
    else:
        raise ConfigError(f"transport: {transport!r} is not an HTTP transport (sse or http)")

    inner = app.router.lifespan_context
    engine = server.memory_state.engine

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        # SSE enters the server lifespan per connection; this hold keeps one engine for the app's life.
        engine.acquire()
        try:
            async with inner(a) as value:
                yield value
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(engine.release)

    app.router.lifespan_context = lifespan
    return app


async def serve_http(
    server: MemoryServer,
    *,
    transport: str,
    path: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Serve ``server`` over ``transport`` with uvicorn on the configured host and port until stopped."""
    import uvicorn

    settings = server.memory_state.settings
    app = build_http_app(server, transport=transport, path=path, allowed_hosts=allowed_hosts)
    # log_config=None: uvicorn's default config sends access logs to stdout; ours go to stderr.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
    await uvicorn.Server(config).serve()
