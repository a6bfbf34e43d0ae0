"""The local page: a person browses, searches, corrects, deletes and restores memories.

Every URL starts with the run's secret (``/<secret>/...``); any other path, a foreign Host header
(DNS rebinding) or a form without the secret is answered 403. Engine calls run in worker threads
(the stores block); every write is recorded in the history with ``source="person"``.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from mem0_mcp.engine.browse import deleted_memories, list_scopes
from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import InvalidInputError, Mem0Error, NotFoundError
from mem0_mcp.models import HistoryEntry, MemoryItem, Scope
from mem0_mcp.ui.filters import parse_filter, parse_metadata
from mem0_mcp.ui.graph_svg import legend, to_html, to_svg

PAGE_SIZE = 50
SCOPE_KEYS = ("user_id", "agent_id", "run_id")
FORBIDDEN = "forbidden: open the address `mem0-mcp ui` printed (it holds this run's secret)\n"
Handler = Callable[[Request], Awaitable[Response]]
_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class PageConfig:
    """What one run of the page serves: the engine, the secret, the scope it opens on, and the
    Host header values it answers (127.0.0.1:PORT and localhost:PORT)."""

    memory: Memory
    secret: str
    default_scope: Scope
    allowed_hosts: Sequence[str]


def new_secret() -> str:
    return secrets.token_urlsafe(24)


class Guard:
    """ASGI middleware: the secret prefix and the Host header, before any route runs."""

    def __init__(self, app: ASGIApp, secret: str, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.prefix = f"/{secret}".encode()
        self.hosts = {h.lower().encode() for h in allowed_hosts}

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        head = ("/" + path.lstrip("/").split("/", 1)[0]).encode()
        host = dict(scope["headers"]).get(b"host", b"").lower()
        if host not in self.hosts or not hmac.compare_digest(head, self.prefix):
            await PlainTextResponse(FORBIDDEN, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def scope_of(params: Mapping[str, str], default: Scope) -> Scope:
    """The scope a request names: user_id / agent_id / run_id, or the picker's ``scope``
    (those three as a query string), or the page's default."""
    given = {k: params.get(k, "").strip() or None for k in SCOPE_KEYS}
    if not any(given.values()) and params.get("scope"):
        picked = dict(parse_qsl(params["scope"]))
        given = {k: picked.get(k) or None for k in SCOPE_KEYS}
    scope = Scope(**given)
    return default if scope.is_empty() else scope


def status_of(item: MemoryItem | None) -> str:
    if item is None:
        return "deleted"
    return "superseded" if item.superseded_at else "live"


class Pages:
    """The page's routes over one PageConfig."""

    def __init__(self, config: PageConfig) -> None:
        self.config = config
        self.memory = config.memory
        env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))
        env.globals["base"] = f"/{config.secret}"
        env.globals["csrf"] = config.secret
        env.filters["when"] = lambda t: (t or "")[:19].replace("T", " ")
        env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2, sort_keys=True)
        self.env = env

    async def render(self, request: Request, name: str, code: int = 200, **values: Any) -> HTMLResponse:
        """The template filled in; the scope picker's scopes are read unless given."""
        nonce = secrets.token_urlsafe(12)
        scope: Scope = values.pop("scope", self.config.default_scope)
        if "scopes" not in values:
            try:
                values["scopes"] = await run_in_threadpool(list_scopes, self.memory.storage)
            except Mem0Error:
                values["scopes"] = []
        html = self.env.get_template(name).render(
            nonce=nonce,
            scope=scope,
            scope_qs=urlencode(scope.as_dict()),
            message=request.query_params.get("msg"),
            graph_on=self.memory.settings.graph_enabled != "false",
            **values,
        )
        return HTMLResponse(html, status_code=code, headers=security_headers(nonce))

    async def error(self, request: Request, exc: Exception, scope: Scope | None = None) -> HTMLResponse:
        status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, InvalidInputError) else 500
        return await self.render(
            request, "error.html", status, error=str(exc), scope=scope or self.config.default_scope
        )

    def redirect(self, path: str, **params: str | None) -> RedirectResponse:
        query = urlencode({k: v for k, v in params.items() if v})
        url = f"/{self.config.secret}{path}" + (f"?{query}" if query else "")
        return RedirectResponse(url, status_code=303)

    async def form(self, request: Request) -> FormData:
        """The POSTed form, after checking it carries the secret (CSRF)."""
        form = await request.form()
        sent = form.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, self.config.secret):
            raise PermissionError("the form does not carry this run's secret")
        return form

    # ------------------------------------------------------------------ list and search
    async def index(self, request: Request) -> Response:
        params = request.query_params
        scope = scope_of(params, self.config.default_scope)
        query, filter_text = params.get("q", "").strip(), params.get("filter", "").strip()
        superseded, view = params.get("superseded") == "1", params.get("view", "live")
        values: dict[str, Any] = {"q": query, "filter": filter_text, "superseded": superseded, "view": view}
        try:
            values["scopes"] = await run_in_threadpool(list_scopes, self.memory.storage)
            if view == "deleted":
                values["deleted"] = await run_in_threadpool(deleted_memories, self.memory.storage, scope)
                return await self.render(request, "deleted.html", scope=scope, **values)
            filters = parse_filter(filter_text)
            if query:
                found = await run_in_threadpool(
                    lambda: self.memory.search(
                        query, **scope.model_dump(), filters=filters, limit=PAGE_SIZE,
                        include_superseded=superseded,
                    )
                )  # fmt: skip
                values.update(items=found.results, total=len(found.results), next_after=None)
            else:
                after = [params["after"], params["after_id"]] if params.get("after_id") else None
                page = await run_in_threadpool(
                    lambda: self.memory.get_all(
                        **scope.model_dump(), filters=filters, limit=PAGE_SIZE, after=after,
                        include_superseded=superseded,
                    )
                )  # fmt: skip
                values.update(items=page.results, total=page.total, next_after=page.next_after)
        except Mem0Error as exc:
            values.setdefault("scopes", [])
            values.update(items=[], total=0, error=str(exc))
            return await self.render(request, "list.html", 400, scope=scope, **values)
        return await self.render(request, "list.html", scope=scope, **values)

    # ------------------------------------------------------------------ one memory
    async def load(self, memory_id: str) -> tuple[MemoryItem | None, list[HistoryEntry]]:
        """The memory (None once deleted) and its history; NotFoundError when neither exists."""
        entries = await run_in_threadpool(self.memory.history, memory_id)
        try:
            item = await run_in_threadpool(self.memory.get, memory_id)
        except NotFoundError:
            item = None
        return item, entries

    async def detail(self, request: Request) -> Response:
        memory_id = request.path_params["memory_id"]
        try:
            item, entries = await self.load(memory_id)
        except Mem0Error as exc:
            return await self.error(request, exc)
        last = next((e for e in reversed(entries) if e.event != "ADD"), None)
        return await self.render(
            request, "memory.html", scope=scope_from_entry(item, entries), item=item,
            memory_id=memory_id, entries=list(reversed(entries)), status=status_of(item), undo=last,
        )  # fmt: skip

    async def edit(self, request: Request) -> Response:
        memory_id = request.path_params["memory_id"]
        try:
            item, entries = await self.load(memory_id)
        except Mem0Error as exc:
            return await self.error(request, exc)
        if item is None:
            return await self.error(request, NotFoundError(memory_id))
        scope = scope_from_entry(item, entries)
        text, meta_text = item.memory, json.dumps(item.metadata, ensure_ascii=False, indent=2, sort_keys=True)
        if request.method == "POST":
            form = await self.form(request)
            text, meta_text = str(form.get("text", "")), str(form.get("metadata", "") or "{}")
            try:
                metadata = parse_metadata(meta_text)
                changes: dict[str, Any] = {}
                if text.strip() != item.memory:
                    changes["text"] = text.strip()
                if metadata != item.metadata:
                    changes["metadata"] = metadata
                if not changes:
                    return self.redirect(f"/memory/{memory_id}", msg="Nothing changed.")
                await run_in_threadpool(lambda: self.memory.update(memory_id, **changes, source="person"))
            except Mem0Error as exc:
                return await self.render(
                    request, "edit.html", 400, scope=scope, item=item, text=text, meta_text=meta_text,
                    error=str(exc),
                )  # fmt: skip
            return self.redirect(f"/memory/{memory_id}", msg="Saved. The previous version is in the history.")
        return await self.render(request, "edit.html", scope=scope, item=item, text=text, meta_text=meta_text)

    async def delete(self, request: Request) -> Response:
        memory_id = request.path_params["memory_id"]
        try:
            item, entries = await self.load(memory_id)
            if item is None:
                raise NotFoundError(memory_id)
        except Mem0Error as exc:
            return await self.error(request, exc)
        scope = scope_from_entry(item, entries)
        if request.method == "GET":  # the confirmation step: a GET never deletes
            return await self.render(request, "delete.html", scope=scope, item=item)
        await self.form(request)
        try:
            await run_in_threadpool(lambda: self.memory.delete(memory_id, source="person"))
        except Mem0Error as exc:
            return await self.error(request, exc, scope)
        return self.redirect(
            "/", **scope.as_dict(), msg=f"Deleted “{item.memory[:80]}”. It can be restored from Deleted."
        )

    async def restore(self, request: Request) -> Response:
        memory_id = request.path_params["memory_id"]
        await self.form(request)
        try:
            result = await run_in_threadpool(lambda: self.memory.restore(memory_id, source="person"))
        except Mem0Error as exc:
            return await self.error(request, exc)
        return self.redirect(f"/memory/{memory_id}", msg=f"Undone: the {result.reverted.lower()}.")

    # ------------------------------------------------------------------ graph
    async def graph(self, request: Request) -> Response:
        scope = scope_of(request.query_params, self.config.default_scope)
        graph_memory = self.memory.graph
        if graph_memory is None:
            return await self.render(request, "graph.html", scope=scope, graph=None)
        try:
            graph = await run_in_threadpool(graph_memory.export, scope)
            scopes = await run_in_threadpool(list_scopes, self.memory.storage)
        except Mem0Error as exc:
            return await self.error(request, exc, scope)
        if request.url.path.endswith(".html"):
            name = "-".join(scope.as_dict().values()) or "graph"
            return HTMLResponse(
                to_html(graph),
                headers={"Content-Disposition": f'attachment; filename="mem0-graph-{name}.html"'},
            )
        svg = await run_in_threadpool(to_svg, graph)
        return await self.render(
            request, "graph.html", scope=scope, graph=graph, svg=svg, legend=legend(graph), scopes=scopes
        )


def scope_from_entry(item: MemoryItem | None, entries: Sequence[HistoryEntry]) -> Scope:
    """The scope a memory belongs to (read from its history once it is deleted)."""
    source: Any = item if item is not None else (entries[0] if entries else None)
    if source is None:
        return Scope()
    return Scope(user_id=source.user_id, agent_id=source.agent_id, run_id=source.run_id)


def security_headers(nonce: str) -> dict[str, str]:
    """Nothing is loaded from elsewhere, the page is never framed, links never send the secret
    on as a Referer."""
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
            "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def create_app(config: PageConfig) -> ASGIApp:
    """The ASGI app of the page (routes under the secret, behind the Guard)."""
    pages = Pages(config)

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except PermissionError as exc:
                return PlainTextResponse(f"forbidden: {exc}\n", status_code=403)

        return run

    routes = [
        Route("/", guarded(pages.index)),
        Route("/memory/{memory_id}", guarded(pages.detail)),
        Route("/memory/{memory_id}/edit", guarded(pages.edit), methods=["GET", "POST"]),
        Route("/memory/{memory_id}/delete", guarded(pages.delete), methods=["GET", "POST"]),
        Route("/memory/{memory_id}/restore", guarded(pages.restore), methods=["POST"]),
        Route("/graph", guarded(pages.graph)),
        Route("/graph.html", guarded(pages.graph)),
    ]
    app = Starlette(routes=[Mount(f"/{config.secret}", routes=routes)])
    return Guard(app, config.secret, config.allowed_hosts)
