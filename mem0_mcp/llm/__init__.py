"""The LLM layer: backends behind one protocol, and the planner of ``add(..., infer=True)``.

Modules: base (the LLM protocol and its message types), factory (the configured backend, its
SDK imported only when chosen, so the verbatim path starts fast), anthropic_llm and
openai_compatible (backends), prompts, jsonparse (JSON out of model output), content (message
blocks to text), and the planner: pipeline (orchestration) over extraction, decisions, actions,
with plan (its types), replies (bounds on answers), chunks (token budget) and run (one plan's
calls).
"""

from __future__ import annotations

from mem0_mcp.llm.base import LLM, ChatMessage, ContentBlock, ImageBlock, LLMError, LLMResponse, TextBlock
from mem0_mcp.llm.content import ContentPart, content_parts, transcript, verbatim_text
from mem0_mcp.llm.factory import build_llm, resolve_provider
from mem0_mcp.llm.pipeline import MemoryPipeline
from mem0_mcp.llm.plan import Action, EventName, Neighbour, Plan
from mem0_mcp.llm.prompts import PromptError, PromptSet
from mem0_mcp.llm.replies import UnusableReplyError

__all__ = [
    "LLM",
    "Action",
    "ChatMessage",
    "ContentBlock",
    "ContentPart",
    "EventName",
    "ImageBlock",
    "LLMError",
    "LLMResponse",
    "MemoryPipeline",
    "Neighbour",
    "Plan",
    "PromptError",
    "PromptSet",
    "TextBlock",
    "UnusableReplyError",
    "build_llm",
    "content_parts",
    "resolve_provider",
    "transcript",
    "verbatim_text",
]
