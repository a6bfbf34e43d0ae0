"""The ``sampling`` LLM backend: ask the MCP client's own model to do the memory work.

It lives outside the engine packages because only the server holds a live MCP session. The
engine sees a plain LLM; the server hands in a sync callable
``create_message(system, messages, max_tokens) -> (text, input_tokens, output_tokens)``
(see :func:`session_sampler`, which bridges from the engine's worker thread to the session's
event loop with ``anyio.from_thread.run``).

Opt-in only: sampling is deprecated in the 2026-07 MCP spec and many clients (Claude Desktop
among them) do not offer it, so a missing capability fails loudly with what to configure instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from mem0_mcp.llm.base import ChatMessage, ContentBlock, LLMError, LLMResponse, TextBlock

logger = logging.getLogger(__name__)

CreateMessage = Callable[[str, list[ChatMessage], int], tuple[str, int, int]]

_JSON_RULE = "\n\nReply with one JSON object only: no prose before or after it, no code fence."


class SamplingUnsupportedError(LLMError):
    """The connected MCP client did not declare the sampling capability."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "llm_provider=sampling: the connected MCP client does not support sampling "
            "(it did not declare the 'sampling' capability"
            + (f"; {detail}" if detail else "")
            + "). Use a client that offers sampling, or set MEM0_MCP_LLM_PROVIDER to anthropic "
            "(with ANTHROPIC_API_KEY) or openai_compatible (with MEM0_MCP_LLM_BASE_URL and "
            "MEM0_MCP_LLM_MODEL)."
        )


class SamplingLLM:
    """An LLM backend that asks the MCP client's model through ``create_message``."""

    name = "sampling"
    # A declared capability, not a name to compare: calls hop back to the event loop of the MCP
    # request that started them, so they must run on that request's worker thread (see
    # ``session_sampler``), never on a pool thread of the engine.
    request_bound = True

    def __init__(
        self,
        create_message: CreateMessage,
        *,
        supports_sampling: Callable[[], bool] | None = None,
        max_tokens: int = 2048,
        supports_vision: bool = True,
    ) -> None:
        self._create_message = create_message
        self._supports_sampling = supports_sampling
        self.max_tokens = max_tokens
        # MCP sampling messages carry images; whether the client's model reads them is its call.
        self.supports_vision = supports_vision

    def complete(
        self,
        system: str,
        messages: list[ChatMessage],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        if self._supports_sampling is not None and not self._supports_sampling():
            raise SamplingUnsupportedError()
        prompt = system + (_JSON_RULE if json_output else "")
        try:
            text, in_tokens, out_tokens = self._create_message(
                prompt, messages, max_tokens or self.max_tokens
            )
        except LLMError:
            raise
        except Exception as exc:
            if _looks_unsupported(exc):
                raise SamplingUnsupportedError(str(exc)) from exc
            raise LLMError(f"sampling: the client's model failed: {type(exc).__name__}: {exc}") from exc
        return LLMResponse(text, in_tokens, out_tokens)


METHOD_NOT_FOUND = -32601


def _looks_unsupported(exc: Exception) -> bool:
    """Whether a ``create_message`` callable's error means the client cannot sample at all."""
    code = getattr(exc, "code", None)
    text = str(exc).lower()
    if code == METHOD_NOT_FOUND or "method not found" in text:
        return True
    return "sampling" in text and "support" in text


# --------------------------------------------------------------------------- MCP bridge


def to_sampling_messages(messages: list[ChatMessage]) -> list[Any]:
    """Neutral LLM messages as MCP ``SamplingMessage``s (text and base64 images)."""
    from mcp import types

    out = []
    for m in messages:
        content = m["content"]
        blocks: list[ContentBlock] = (
            content if isinstance(content, list) else [TextBlock(type="text", text=content)]
        )
        converted: list[Any] = []
        for b in blocks:
            if b["type"] == "text":
                converted.append(types.TextContent(type="text", text=b["text"]))
            elif "data" in b:
                converted.append(
                    types.ImageContent(
                        type="image", data=b["data"], mime_type=b.get("media_type", "image/png")
                    )
                )
            else:
                # MCP sampling has no image-by-URL block; name the URL so the model knows.
                converted.append(types.TextContent(type="text", text=f"[image at {b.get('url')}]"))
        role: Literal["user", "assistant"] = "assistant" if m["role"] == "assistant" else "user"
        out.append(
            types.SamplingMessage(role=role, content=converted[0] if len(converted) == 1 else converted)
        )
    return out


def client_supports_sampling(session: Any) -> bool:
    from mcp import types

    try:
        return bool(
            session.check_client_capability(types.ClientCapabilities(sampling=types.SamplingCapability()))
        )
    except Exception:  # a session without capability data: let the request decide
        logger.debug("cannot read the client's capabilities", exc_info=True)
        return True


def session_sampler(session: Any, *, related_request_id: Any = None) -> CreateMessage:
    """A sync ``create_message`` for :class:`SamplingLLM` over a live server session.

    Call the result from a worker thread started by anyio (``anyio.to_thread.run_sync``), as
    AsyncMemory does; it hops back to the session's event loop for each request.
    """
    import anyio.from_thread
    from mcp import types
    from mcp.shared.exceptions import MCPError, NoBackChannelError

    async def call(system: str, messages: list[ChatMessage], max_tokens: int) -> tuple[str, int, int]:
        try:
            result = await session.create_message(
                to_sampling_messages(messages),
                max_tokens=max_tokens,
                system_prompt=system,
                related_request_id=related_request_id,
            )
        except NoBackChannelError as exc:
            # 2026-07-28 connections have no back-channel for server-initiated requests at all.
            raise SamplingUnsupportedError(f"this connection cannot carry server requests: {exc}") from exc
        except MCPError as exc:
            if exc.code == METHOD_NOT_FOUND:
                raise SamplingUnsupportedError(exc.message) from exc
            raise
        content = result.content if isinstance(result.content, list) else [result.content]
        text = "".join(c.text for c in content if isinstance(c, types.TextContent))
        # Sampling results carry no token counts; estimate them so usage stays comparable.
        in_chars = len(system) + sum(len(str(m.get("content", ""))) for m in messages)
        return text, in_chars // 4, len(text) // 4

    def create_message(system: str, messages: list[ChatMessage], max_tokens: int) -> tuple[str, int, int]:
        return anyio.from_thread.run(call, system, messages, max_tokens)

    return create_message


def sampling_llm_for_session(
    session: Any, *, max_tokens: int = 2048, related_request_id: Any = None
) -> SamplingLLM:
    """What the server passes to the engine when ``llm_provider=sampling``."""
    return SamplingLLM(
        session_sampler(session, related_request_id=related_request_id),
        supports_sampling=lambda: client_supports_sampling(session),
        max_tokens=max_tokens,
    )


_bound: ContextVar[tuple[Any, Any] | None] = ContextVar("mem0_mcp_sampling_session", default=None)


class RequestSamplingLLM:
    """The sampling backend for an engine that outlives any one MCP request.

    The engine is built once, but the client's model can only be asked through the session of
    the request in flight. The server wraps each engine call in :meth:`bind`; the binding is a
    context variable, which anyio copies into the worker thread the engine runs in::

        llm = RequestSamplingLLM(max_tokens=settings.llm_max_tokens)
        memory = Memory(settings, llm=llm)
        ...
        with llm.bind(ctx.session, ctx.request_id):
            result = await anyio.to_thread.run_sync(lambda: memory.add(..., infer=True))
    """

    name = "sampling"
    supports_vision = True
    request_bound = True  # see SamplingLLM.request_bound

    def __init__(self, *, max_tokens: int = 2048) -> None:
        self.max_tokens = max_tokens

    @contextmanager
    def bind(self, session: Any, related_request_id: Any = None) -> Iterator[None]:
        token = _bound.set((session, related_request_id))
        try:
            yield
        finally:
            _bound.reset(token)

    def complete(
        self,
        system: str,
        messages: list[ChatMessage],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        bound = _bound.get()
        if bound is None:
            raise LLMError(
                "llm_provider=sampling: no MCP request is in progress whose client could be asked "
                "(the server must call the engine inside RequestSamplingLLM.bind)"
            )
        session, request_id = bound
        llm = sampling_llm_for_session(session, max_tokens=self.max_tokens, related_request_id=request_id)
        return llm.complete(system, messages, json_output=json_output, max_tokens=max_tokens, prompt=prompt)
