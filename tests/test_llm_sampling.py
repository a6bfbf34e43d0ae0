"""The sampling backend: a plain callable underneath, and a real MCP Client with a sampling callback."""

from __future__ import annotations

import json
import warnings
from typing import Any

import anyio
import numpy as np
import pytest
from mcp import types
from mcp.client import Client
from mcp.server.mcpserver import Context, MCPServer

from mem0_mcp.llm.base import LLMError
from mem0_mcp.llm.pipeline import MemoryPipeline
from mem0_mcp.llm.prompts import PromptSet
from mem0_mcp.models import Message
from mem0_mcp.server.sampling import (
    RequestSamplingLLM,
    SamplingLLM,
    SamplingUnsupportedError,
    sampling_llm_for_session,
)

pytestmark = pytest.mark.filterwarnings("ignore::Warning")


def test_sampling_llm_over_a_callable():
    seen: list[tuple[str, list, int]] = []

    def create_message(system: str, messages: list[dict[str, Any]], max_tokens: int) -> tuple[str, int, int]:
        seen.append((system, messages, max_tokens))
        return '{"facts": []}', 12, 3

    llm = SamplingLLM(create_message, max_tokens=500)
    r = llm.complete("sys", [{"role": "user", "content": "hi"}])
    assert (r.text, r.input_tokens, r.output_tokens) == ('{"facts": []}', 12, 3)
    assert seen[0][0].startswith("sys") and "JSON object only" in seen[0][0] and seen[0][2] == 500
    llm.complete("plain", [{"role": "user", "content": "hi"}], json_output=False, max_tokens=50)
    assert seen[1][0] == "plain" and seen[1][2] == 50


def test_sampling_llm_without_the_capability_fails_clearly():
    llm = SamplingLLM(lambda *a: ("", 0, 0), supports_sampling=lambda: False)
    with pytest.raises(SamplingUnsupportedError, match=r"does not support sampling.*MEM0_MCP_LLM_PROVIDER"):
        llm.complete("s", [{"role": "user", "content": "x"}])


def test_sampling_errors_become_llm_errors():
    def boom(*_: Any) -> tuple[str, int, int]:
        raise RuntimeError("client closed")

    with pytest.raises(LLMError, match="client closed"):
        SamplingLLM(boom).complete("s", [{"role": "user", "content": "x"}])

    class MethodNotFound(Exception):
        code = -32601

    def missing(*_: Any) -> tuple[str, int, int]:
        raise MethodNotFound("Method not found")

    with pytest.raises(SamplingUnsupportedError):
        SamplingLLM(missing).complete("s", [{"role": "user", "content": "x"}])


def _server() -> MCPServer:
    server = MCPServer("sampling-test")

    @server.tool()
    async def remember(text: str, ctx: Context) -> str:
        llm = sampling_llm_for_session(ctx.session, related_request_id=ctx.request_id)
        pipeline = MemoryPipeline(llm, PromptSet.load())

        def plan() -> Any:
            return pipeline.plan(
                [Message(content=text)],
                agent_mode=False,
                memory_type=None,
                embed=lambda texts: np.eye(len(texts), 8, dtype=np.float32),
                neighbours=lambda vectors: [[] for _ in vectors],
            )

        # The engine runs in a worker thread; the sampler hops back to this loop.
        result = await anyio.to_thread.run_sync(plan)
        return json.dumps(
            {
                "inferred": result.inferred,
                "reason": result.reason,
                "facts": [a.text for a in result.actions],
                "calls": result.usage.llm_calls,
            }
        )

    return server


@pytest.mark.anyio
async def test_sampling_through_a_real_mcp_client():
    requests: list[types.CreateMessageRequestParams] = []

    async def on_sampling(
        context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        requests.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text='{"facts": ["Trinkt gerne Tee"]}'),
            model="client-model",
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        async with Client(_server(), sampling_callback=on_sampling, mode="legacy") as client:
            result = await client.call_tool("remember", {"text": "Ich trinke gerne Tee"})
    assert not result.is_error, result
    data = json.loads(result.content[0].text)
    assert data["inferred"] and data["facts"] == ["Trinkt gerne Tee"] and data["calls"] == 1
    assert len(requests) == 1
    params = requests[0]
    assert "Ich trinke gerne Tee" in (params.system_prompt or "")
    assert params.messages[0].role == "user"


@pytest.mark.anyio
async def test_sampling_client_without_the_capability_falls_back_with_a_reason():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        async with Client(_server(), mode="legacy") as client:
            result = await client.call_tool("remember", {"text": "I like tea"})
    data = json.loads(result.content[0].text)
    assert data["inferred"] is False and "does not support sampling" in data["reason"]
    assert data["facts"] == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_request_sampling_llm_needs_a_bound_request():
    with pytest.raises(LLMError, match="no MCP request is in progress"):
        RequestSamplingLLM().complete("s", [{"role": "user", "content": "x"}])


async def test_request_sampling_llm_through_a_real_mcp_client():
    """One engine-lifetime LLM; each request binds its own session, the worker thread sees it."""
    llm = RequestSamplingLLM(max_tokens=300)
    pipeline = MemoryPipeline(llm, PromptSet.load())
    server = MCPServer("request-sampling-test")

    @server.tool()
    async def remember(text: str, ctx: Context) -> str:
        def plan() -> Any:
            return pipeline.plan(
                [Message(content=text)],
                agent_mode=False,
                memory_type=None,
                embed=lambda texts: np.eye(len(texts), 8, dtype=np.float32),
                neighbours=lambda vectors: [[] for _ in vectors],
            )

        with llm.bind(ctx.session, ctx.request_id):
            result = await anyio.to_thread.run_sync(plan)
        return json.dumps({"facts": [a.text for a in result.actions], "reason": result.reason})

    seen: list[int] = []

    async def on_sampling(
        context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        seen.append(params.max_tokens)
        fact = "Likes tea" if "tea" in (params.system_prompt or "") else "Likes coffee"
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=json.dumps({"facts": [fact]})),
            model="m",
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        async with Client(server, sampling_callback=on_sampling, mode="legacy") as client:
            first = json.loads((await client.call_tool("remember", {"text": "I like tea"})).content[0].text)
            second = json.loads(
                (await client.call_tool("remember", {"text": "I like coffee"})).content[0].text
            )
    assert first["facts"] == ["Likes tea"] and second["facts"] == ["Likes coffee"]
    assert seen == [300, 300]


async def test_add_memory_infers_with_the_clients_own_model(tmp_path) -> None:
    """llm_provider=sampling end to end: the add_memory tool asks the connected client's model."""
    from mem0_mcp.engine.memory import Memory
    from mem0_mcp.server.app import create_server
    from mem0_mcp.server.sampling import RequestSamplingLLM
    from tests.support.engine import FakeEmbedder, make_settings

    settings = make_settings(tmp_path / "data", llm_provider="sampling")
    server = create_server(
        settings, memory_factory=lambda s: Memory(s, embedder=FakeEmbedder(), llm=RequestSamplingLLM())
    )
    asked: list[str] = []

    async def on_sampling(
        context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        asked.append(params.system_prompt or "")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=json.dumps({"facts": ["Drinks green tea daily"]})),
            model="client-model",
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        async with Client(server, sampling_callback=on_sampling, mode="legacy") as client:
            out = await client.call_tool("add_memory", {"text": "I have green tea every day", "infer": True})
    assert not out.is_error, out.content
    result = out.structured_content
    assert result["inferred"] is True and asked
    assert [e["memory"] for e in result["results"]] == ["Drinks green tea daily"]


@pytest.mark.anyio
async def test_a_connection_without_a_back_channel_cannot_sample():
    """2026-07-28 connections cannot carry server requests: told as unsupported, by the error's type."""
    from mcp.shared.exceptions import NoBackChannelError

    class NoChannel:
        async def create_message(self, *_: Any, **__: Any) -> Any:
            raise NoBackChannelError("sampling/createMessage")

        def check_client_capability(self, _: Any) -> bool:
            return True

    llm = sampling_llm_for_session(NoChannel())
    assert llm.request_bound and RequestSamplingLLM.request_bound
    with pytest.raises(SamplingUnsupportedError, match="cannot carry server requests"):
        await anyio.to_thread.run_sync(lambda: llm.complete("s", [{"role": "user", "content": "x"}]))
