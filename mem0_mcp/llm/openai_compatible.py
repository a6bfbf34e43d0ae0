"""Any server speaking OpenAI's /v1/chat/completions: Ollama, LM Studio, vLLM, llama.cpp.

Plain httpx, no SDK: these servers differ in what they accept (JSON mode, usage reporting,
content as a string or as parts), so the request is conservative and the parsing tolerant.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable

import httpx

from mem0_mcp.llm.base import ChatMessage, ContentBlock, LLMError, LLMResponse

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
MAX_BACKOFF = 8.0


def chat_url(base_url: str) -> str:
    """The chat completions endpoint of a server given by its base URL (with or without /v1)."""
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if re.search(r"/v\d+$", base):
        return base + "/chat/completions"
    return base + "/v1/chat/completions"


def _to_openai(block: ContentBlock) -> dict[str, object]:
    """A neutral content block in the chat completions shape (only images differ)."""
    if block["type"] != "image":
        return dict(block)
    url = block.get("url") or f"data:{block.get('media_type', 'image/png')};base64,{block['data']}"
    return {"type": "image_url", "image_url": {"url": url}}


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return ""


class OpenAICompatibleLLM:
    """The LLM protocol over an OpenAI-style /v1/chat/completions endpoint (httpx, retries)."""

    name = "openai_compatible"
    request_bound = False

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_tokens: int = 2048,
        temperature: float = 0.0,
        timeout: float = 60.0,
        max_retries: int = 3,
        supports_vision: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = chat_url(base_url)
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_retries = max_retries
        self.supports_vision = supports_vision
        self._sleep = sleep
        # None: not tried yet; False once the server rejected response_format.
        self._json_mode: bool | None = None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def complete(
        self,
        system: str,
        messages: list[ChatMessage],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        """One completion (see LLM.complete). Raises LLMError for HTTP, transport and answer errors."""
        wire: list[dict[str, object]] = [{"role": "system", "content": system}] if system else []
        for m in messages:
            content = m["content"]
            wire.append(
                {
                    "role": m["role"],
                    "content": [_to_openai(b) for b in content] if isinstance(content, list) else content,
                }
            )
        body: dict[str, object] = {
            "model": self.model,
            "messages": wire,
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": self.temperature,
            "stream": False,
        }
        use_json = json_output and self._json_mode is not False
        if use_json:
            body["response_format"] = {"type": "json_object"}
        response = self._post(body)
        if use_json and response.status_code in (400, 404, 415, 422, 500, 501):
            # Older llama.cpp / LM Studio builds reject JSON mode; the prompts ask for JSON anyway.
            logger.info(
                "%s: the server rejected response_format (HTTP %s); retrying without it",
                self.url,
                response.status_code,
            )
            body.pop("response_format")
            retry = self._post(body)
            if retry.is_success:
                self._json_mode = False
            response = retry
        elif use_json and response.is_success:
            self._json_mode = True
        if not response.is_success:
            raise LLMError(f"{self.url}: HTTP {response.status_code}: {response.text[:300]}")
        return self._parse(response, system, wire)

    def _post(self, body: dict[str, object]) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TimeoutException as exc:
                error: Exception = exc
                status = None
            except httpx.TransportError as exc:
                error, status = exc, None
            else:
                if response.status_code not in _RETRY_STATUS or attempt >= self.max_retries:
                    return response
                error, status = LLMError(f"HTTP {response.status_code}"), response.status_code
            if attempt >= self.max_retries:
                raise LLMError(
                    f"{self.url}: {type(error).__name__}: {error} (after {attempt + 1} attempts)"
                ) from error
            delay = min(MAX_BACKOFF, 0.5 * 2**attempt) * (0.5 + random.random() / 2)
            if status is not None:
                hinted = _retry_after(response)
                delay = hinted if hinted is not None else delay
            logger.info("%s: %s, retry %d in %.2fs", self.url, status or error, attempt + 1, delay)
            self._sleep(delay)
            attempt += 1

    def _parse(self, response: httpx.Response, system: str, wire: list[dict[str, object]]) -> LLMResponse:
        try:
            data = response.json()
        except ValueError as exc:
            raise LLMError(f"{self.url}: the answer is not JSON: {response.text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise LLMError(f"{self.url}: unexpected answer {str(data)[:200]!r}")
        if "error" in data and not data.get("choices"):
            raise LLMError(f"{self.url}: {data['error']}")
        choices = data.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            raise LLMError(f"{self.url}: the answer has no choices: {str(data)[:200]!r}")
        choice = choices[0]
        message = choice.get("message") or {}
        text = _text_of(message.get("content")) if isinstance(message, dict) else ""
        if not text:
            text = _text_of(choice.get("text"))  # completion-style servers
        text = _THINK.sub("", text).strip()
        usage = data.get("usage") or {}
        in_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        out_tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        if not isinstance(in_tokens, int):  # not every server reports usage; estimate it
            in_tokens = (len(system) + sum(len(_text_of(m["content"])) for m in wire)) // 4
        if not isinstance(out_tokens, int):
            out_tokens = len(text) // 4
        return LLMResponse(text, in_tokens, out_tokens)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), 30.0))
    except ValueError:
        return None
