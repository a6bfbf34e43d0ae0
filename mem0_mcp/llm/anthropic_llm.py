"""Claude through the official SDK. Retries on 429/5xx are the SDK's own (exponential backoff
honouring retry-after); we only translate its errors and the neutral message format."""

from __future__ import annotations

import logging

from mem0_mcp.llm.base import ChatMessage, ContentBlock, LLMError, LLMResponse

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-haiku-4-5"
_JSON_RULE = "\n\nReply with one JSON object only: no prose before or after it, no code fence."


def _to_anthropic(block: ContentBlock) -> dict[str, object]:
    """A neutral content block in the Messages API's shape (only images differ)."""
    if block["type"] != "image":
        return dict(block)
    if "data" in block:
        return {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": block.get("media_type", "image/png"),
                "data": block["data"],
            },
        }
    return {"type": "image", "source": {"type": "url", "url": block["url"]}}


class AnthropicLLM:
    """The LLM protocol over Anthropic's Messages API."""

    name = "anthropic"
    supports_vision = True
    request_bound = False

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str | None = None,
        max_tokens: int = 2048,
        temperature: float = 0.0,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
    ) -> None:
        import anthropic  # lazy: the SDK costs import time the verbatim path never needs

        self._anthropic = anthropic
        self.model = model or DEFAULT_MODEL
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    def complete(
        self,
        system: str,
        messages: list[ChatMessage],
        *,
        json_output: bool = True,
        max_tokens: int | None = None,
        prompt: str | None = None,
    ) -> LLMResponse:
        """One completion (see LLM.complete). Raises LLMError for API errors and refusals."""
        wire = [
            {
                "role": m["role"],
                "content": [_to_anthropic(b) for b in m["content"]]
                if isinstance(m["content"], list)
                else m["content"],
            }
            for m in messages
        ]
        try:
            response = self._client.messages.create(
                model=self.model,
                max_tokens=max_tokens or self.max_tokens,
                system=system + (_JSON_RULE if json_output else ""),
                messages=wire,  # type: ignore[arg-type]
                # SDK 2.x dropped the temperature parameter (current models fix it); send it
                # only when someone asked for a non-default value for an older model.
                extra_body={"temperature": self.temperature} if self.temperature else None,
            )
        except self._anthropic.APIStatusError as exc:
            raise LLMError(f"anthropic: HTTP {exc.status_code}: {exc.message}") from exc
        except self._anthropic.APIError as exc:
            raise LLMError(f"anthropic: {type(exc).__name__}: {exc}") from exc
        text = "".join(getattr(b, "text", "") for b in response.content if b.type == "text")
        if response.stop_reason == "max_tokens":
            logger.warning("anthropic: the answer hit max_tokens and may be cut off")
        if response.stop_reason == "refusal":
            raise LLMError("anthropic: the model refused the request")
        return LLMResponse(text, response.usage.input_tokens, response.usage.output_tokens)
