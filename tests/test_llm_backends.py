"""The real backends against local HTTP servers on 127.0.0.1 speaking each provider's wire format.

The Anthropic test uses the official SDK over a real socket, so its own retry logic is exercised;
nothing inside the SDK is patched.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mem0_mcp.llm.anthropic_llm import AnthropicLLM
from mem0_mcp.llm.base import LLMError
from mem0_mcp.llm.openai_compatible import OpenAICompatibleLLM, chat_url
from tests.support.provider_server import completion, message, no_sleep

# --------------------------------------------------------------------------- anthropic


def anthropic_error(kind: str, msg: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": msg}}


def test_anthropic_messages_wire_format(serve):
    server, url = serve((200, {}, message('{"facts": ["Likes tea"]}', 42, 9)))
    llm = AnthropicLLM(
        api_key="sk-test", base_url=url, model="claude-haiku-4-5", max_tokens=321, max_retries=0
    )
    png = "iVBORw0KGgo="
    r = llm.complete(
        "You extract facts.",
        [
            {
                "role": "user",
                "content": [
                    {"type": "image", "media_type": "image/png", "data": png},
                    {"type": "text", "text": "hi"},
                ],
            }
        ],
    )
    assert (r.text, r.input_tokens, r.output_tokens) == ('{"facts": ["Likes tea"]}', 42, 9)
    req = server.requests[0]
    assert req.path == "/v1/messages"
    # SDK 2.x sends the key as a bearer token; older ones used x-api-key.
    assert "sk-test" in (
        req.headers.get("x-api-key"),
        req.headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert "anthropic-version" in req.headers
    assert req.body["model"] == "claude-haiku-4-5" and req.body["max_tokens"] == 321
    assert req.body["system"].startswith("You extract facts.") and "JSON object only" in req.body["system"]
    assert req.body["messages"][0]["content"][0] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": png},
    }
    assert "temperature" not in req.body
    llm.complete("plain", [{"role": "user", "content": "x"}], json_output=False, max_tokens=64)
    assert server.requests[1].body["system"] == "plain" and server.requests[1].body["max_tokens"] == 64


def test_anthropic_retries_429_then_succeeds(serve):
    server, url = serve(
        (429, {"retry-after-ms": "20"}, anthropic_error("rate_limit_error", "slow down")),
        (529, {"retry-after-ms": "20"}, anthropic_error("overloaded_error", "busy")),
        (200, {}, message("{}")),
    )
    llm = AnthropicLLM(api_key="k", base_url=url, max_retries=3, timeout=5)
    start = time.monotonic()
    assert llm.complete("s", [{"role": "user", "content": "x"}]).text == "{}"
    assert len(server.requests) == 3 and time.monotonic() - start < 5


def test_anthropic_gives_up_after_retries(serve):
    server, url = serve((503, {"retry-after-ms": "10"}, anthropic_error("api_error", "down")))
    llm = AnthropicLLM(api_key="k", base_url=url, max_retries=2, timeout=5)
    with pytest.raises(LLMError, match="HTTP 503"):
        llm.complete("s", [{"role": "user", "content": "x"}])
    assert len(server.requests) == 3


def test_anthropic_client_error_is_not_retried(serve):
    server, url = serve((400, {}, anthropic_error("invalid_request_error", "max_tokens too large")))
    llm = AnthropicLLM(api_key="k", base_url=url, max_retries=3)
    with pytest.raises(LLMError, match="max_tokens too large"):
        llm.complete("s", [{"role": "user", "content": "x"}])
    assert len(server.requests) == 1


def test_anthropic_timeout(serve):
    _, url = serve((200, {}, message("{}")), delay=1.0)
    llm = AnthropicLLM(api_key="k", base_url=url, max_retries=0, timeout=0.2)
    with pytest.raises(LLMError, match="Timeout"):
        llm.complete("s", [{"role": "user", "content": "x"}])


def test_anthropic_refusal_is_an_error(serve):
    _, url = serve((200, {}, message("", stop="refusal")))
    llm = AnthropicLLM(api_key="k", base_url=url, max_retries=0)
    with pytest.raises(LLMError, match="refused"):
        llm.complete("s", [{"role": "user", "content": "x"}])


# --------------------------------------------------------------------------- openai-compatible


def test_chat_url():
    assert chat_url("http://h:11434") == "http://h:11434/v1/chat/completions"
    assert chat_url("http://h:11434/v1/") == "http://h:11434/v1/chat/completions"
    assert chat_url("http://h/api/v2") == "http://h/api/v2/chat/completions"
    assert chat_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


def test_openai_compatible_wire_format(serve):
    server, url = serve((200, {}, completion('{"facts": []}', {"prompt_tokens": 30, "completion_tokens": 4})))
    llm = OpenAICompatibleLLM(
        base_url=url, model="llama3.1", api_key="sk-local", max_tokens=99, temperature=0.1
    )
    r = llm.complete(
        "sys",
        [
            {
                "role": "user",
                "content": [{"type": "image", "url": "https://x/y.png"}, {"type": "text", "text": "hi"}],
            }
        ],
    )
    assert (r.text, r.input_tokens, r.output_tokens) == ('{"facts": []}', 30, 4)
    req = server.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-local"
    assert req.body["model"] == "llama3.1" and req.body["max_tokens"] == 99 and req.body["temperature"] == 0.1
    assert req.body["messages"][0] == {"role": "system", "content": "sys"}
    assert req.body["messages"][1]["content"][0] == {
        "type": "image_url",
        "image_url": {"url": "https://x/y.png"},
    }
    assert req.body["response_format"] == {"type": "json_object"}
    llm.complete("sys", [{"role": "user", "content": "x"}], json_output=False)
    assert "response_format" not in server.requests[1].body
    llm.close()


def test_openai_compatible_without_api_key_sends_no_auth(serve):
    server, url = serve((200, {}, completion("{}")))
    OpenAICompatibleLLM(base_url=url + "/v1", model="m").complete("s", [{"role": "user", "content": "x"}])
    assert "authorization" not in server.requests[0].headers


def test_openai_compatible_retries_429_then_succeeds(serve):
    server, url = serve(
        (429, {"retry-after": "0"}, {"error": {"message": "rate limited"}}),
        (502, {}, "bad gateway"),
        (200, {}, completion("{}")),
    )
    slept: list[float] = []
    llm = OpenAICompatibleLLM(base_url=url, model="m", max_retries=3, sleep=slept.append)
    assert llm.complete("s", [{"role": "user", "content": "x"}]).text == "{}"
    assert len(server.requests) == 3
    assert slept[0] == 0.0 and 0 < slept[1] <= 1.0  # Retry-After honoured, then jittered backoff


def test_openai_compatible_real_backoff_sleeps_are_bounded(serve):
    server, url = serve((429, {"retry-after": "0.05"}, {}), (200, {}, completion("{}")))
    llm = OpenAICompatibleLLM(base_url=url, model="m", max_retries=1)
    start = time.monotonic()
    llm.complete("s", [{"role": "user", "content": "x"}])
    assert time.monotonic() - start < 2 and len(server.requests) == 2


def test_openai_compatible_gives_up(serve):
    server, url = serve((503, {}, "overloaded"))
    llm = OpenAICompatibleLLM(base_url=url, model="m", max_retries=2, sleep=no_sleep)
    with pytest.raises(LLMError, match="HTTP 503"):
        llm.complete("s", [{"role": "user", "content": "x"}])
    assert len(server.requests) == 3


def test_openai_compatible_server_rejecting_json_mode(serve):
    def handler(body: dict) -> tuple[int, dict, Any]:
        if "response_format" in body:
            return 400, {}, {"error": {"message": "response_format is not supported"}}
        return 200, {}, completion('Sure: {"facts": ["a"]}')

    server, url = serve(handler)
    llm = OpenAICompatibleLLM(base_url=url, model="m", sleep=no_sleep)
    assert llm.complete("s", [{"role": "user", "content": "x"}]).text == 'Sure: {"facts": ["a"]}'
    assert ["response_format" in r.body for r in server.requests] == [True, False]
    # Remembered: the next JSON call goes straight without it.
    llm.complete("s", [{"role": "user", "content": "x"}])
    assert ["response_format" in r.body for r in server.requests] == [True, False, False]


def test_openai_compatible_tolerant_parsing(serve):
    _, url = serve(
        (200, {}, completion([{"type": "text", "text": '{"facts": '}, {"type": "text", "text": "[]}"}])),
        (200, {}, completion('<think>the user wants JSON</think>\n{"facts": []}')),
        (200, {}, {"choices": [{"text": '{"facts": []}'}]}),
    )
    llm = OpenAICompatibleLLM(base_url=url, model="m")
    for _ in range(3):
        r = llm.complete("system prompt", [{"role": "user", "content": "x" * 40}])
        assert r.text == '{"facts": []}'
        assert r.input_tokens > 0 and r.output_tokens > 0  # no usage reported: estimated


@pytest.mark.parametrize("payload", ["not json", {"choices": []}, {"error": "model not found"}])
def test_openai_compatible_bad_answers(serve, payload):
    _, url = serve((200, {}, payload))
    with pytest.raises(LLMError):
        OpenAICompatibleLLM(base_url=url, model="m").complete("s", [{"role": "user", "content": "x"}])


def test_openai_compatible_timeout_and_refused_connection(serve):
    _, url = serve((200, {}, completion("{}")), delay=1.0)
    llm = OpenAICompatibleLLM(base_url=url, model="m", timeout=0.2, max_retries=0)
    with pytest.raises(LLMError, match="Timeout"):
        llm.complete("s", [{"role": "user", "content": "x"}])
    llm = OpenAICompatibleLLM(base_url="http://127.0.0.1:9", model="m", max_retries=1, sleep=no_sleep)
    with pytest.raises(LLMError, match="after 2 attempts"):
        llm.complete("s", [{"role": "user", "content": "x"}])


def test_pipeline_over_the_openai_compatible_backend(serve):
    """The planner end to end over a real socket, with a server that does not do JSON mode."""
    import numpy as np

    from mem0_mcp.llm.pipeline import MemoryPipeline
    from mem0_mcp.llm.prompts import PromptSet
    from mem0_mcp.models import Message

    def handler(body: dict) -> tuple[int, dict, Any]:
        if "response_format" in body:
            return 422, {}, {"detail": "unknown field response_format"}
        return (
            200,
            {},
            completion(
                '```json\n{"facts": ["Wohnt in Leipzig"]}\n```',
                {"prompt_tokens": 100, "completion_tokens": 10},
            ),
        )

    _, url = serve(handler)
    llm = OpenAICompatibleLLM(base_url=url, model="m", sleep=no_sleep)
    plan = MemoryPipeline(llm, PromptSet.load()).plan(
        [Message(content="Ich wohne in Leipzig")],
        agent_mode=False,
        memory_type=None,
        embed=lambda texts: np.eye(len(texts), 8, dtype=np.float32),
        neighbours=lambda vectors: [[] for _ in vectors],
    )
    assert [(a.event, a.text) for a in plan.actions] == [("ADD", "Wohnt in Leipzig")]
    assert plan.usage.llm_calls == 1 and plan.usage.input_tokens == 100
