"""The configured LLM backend: each is imported only when chosen, so the verbatim path starts fast."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from mem0_mcp.errors import ConfigError
from mem0_mcp.llm.base import LLM

if TYPE_CHECKING:
    from mem0_mcp.config import Settings

logger = logging.getLogger(__name__)


def resolve_provider(settings: Settings) -> str:
    """The backend that ``llm_provider`` (possibly ``auto``) stands for."""
    if settings.llm_provider != "auto":
        return settings.llm_provider
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    return "none"


def build_llm(settings: Settings) -> LLM | None:
    """The configured backend, or None for ``none`` (infer then falls back to verbatim).

    Raises ConfigError for a provider that lacks what it needs, is unknown, or (``sampling``)
    can only be built by the MCP server.
    """
    provider = resolve_provider(settings)
    llm: LLM
    if provider == "none":
        logger.info("LLM: none (add with infer=true stores verbatim)")
        return None
    if provider == "anthropic":
        api_key = settings.llm_api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise ConfigError(
                "llm_provider: anthropic needs an API key; set ANTHROPIC_API_KEY or MEM0_MCP_LLM_API_KEY"
            )
        from mem0_mcp.llm.anthropic_llm import AnthropicLLM

        llm = AnthropicLLM(
            api_key=api_key,
            model=settings.llm_model,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            base_url=settings.llm_base_url,
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
        )
        logger.info("LLM: anthropic, model %s", llm.model)
        return llm
    if provider == "openai_compatible":
        if not settings.llm_base_url or not settings.llm_model:
            raise ConfigError(
                "llm_provider: openai_compatible needs MEM0_MCP_LLM_BASE_URL (e.g. "
                "http://127.0.0.1:11434 for Ollama) and MEM0_MCP_LLM_MODEL (e.g. llama3.1:8b)"
            )
        from mem0_mcp.llm.openai_compatible import OpenAICompatibleLLM

        llm = OpenAICompatibleLLM(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
        )
        logger.info("LLM: openai_compatible, model %s at %s", settings.llm_model, llm.url)
        return llm
    if provider == "sampling":
        # The client's model is only reachable through a live MCP session, which the engine
        # never sees: the server builds mem0_mcp.server.sampling.SamplingLLM and passes it in.
        raise ConfigError(
            "llm_provider: sampling is provided by the MCP server (mem0_mcp.server.sampling.SamplingLLM); "
            "the engine cannot build it on its own"
        )
    raise ConfigError(f"llm_provider: unknown provider {provider!r}")
