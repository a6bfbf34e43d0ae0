"""What the model is asked to read out of a conversation: image descriptions, facts, run records."""

from __future__ import annotations

import logging

from mem0_mcp.llm.base import ImageBlock, LLMError
from mem0_mcp.llm.chunks import chunk_lines, estimate_tokens
from mem0_mcp.llm.replies import ReplyLimits, UnusableReplyError, norm
from mem0_mcp.llm.run import Run

logger = logging.getLogger(__name__)


def describe_image(run: Run, image: ImageBlock, context: str) -> str | None:
    """The model's one-line description of ``image``; None (with a warning) when it cannot see it.

    ``context`` is the text written alongside the image. A failed call is a warning, not an error.
    """
    llm = run.llm
    if not llm.supports_vision:
        run.warn(f"an image was skipped: the LLM backend {llm.name!r} cannot see images")
        return None
    ctx = f"The person wrote alongside it: {context.strip()}" if context.strip() else ""
    system = run.render("image_description", context=ctx)
    try:
        response = run.complete(
            "image_description",
            system,
            [{"role": "user", "content": [image, {"type": "text", "text": "Describe this image."}]}],
            json_output=False,
        )
    except LLMError as exc:
        run.warn(f"an image was skipped: describing it failed: {exc}")
        return None
    return " ".join(response.text.split()) or None


def extract_facts(
    run: Run, prompt: str, lines: list[str], limits: ReplyLimits, token_budget: int
) -> list[str]:
    """The facts the model finds in the transcript ``lines``, one call per chunk, duplicates dropped.

    ``prompt`` is fact_extraction or agent_fact_extraction. Raises UnusableReplyError for facts
    past ``limits`` or not text, LLMError when a call fails.
    """
    today = run.today_iso()
    overhead = estimate_tokens(run.render(prompt, today=today, messages=""))
    facts: list[str] = []
    seen: set[str] = set()
    chunks = chunk_lines(lines, token_budget, overhead)
    for chunk in chunks:
        system = run.render(prompt, today=today, messages=chunk)
        data = run.complete_json(
            prompt, system, "Extract the facts from the conversation above as JSON.", "facts"
        )
        raw = data.get("facts")
        if not isinstance(raw, list):
            raise UnusableReplyError(f'"facts" must be a list, got {type(raw).__name__}')
        limits.check_count(len(facts) + len(raw))
        for k, item in enumerate(raw):
            value = item.get("text") if isinstance(item, dict) else item
            fact = limits.fact(value, f"facts[{k}]" + (".text" if isinstance(item, dict) else ""))
            if fact is None:
                continue
            if norm(fact) not in seen:
                seen.add(norm(fact))
                facts.append(fact)
    if len(chunks) > 1:
        logger.info("extraction over %d chunks gave %d facts", len(chunks), len(facts))
    return facts


def procedural_summary(run: Run, lines: list[str], limits: ReplyLimits, token_budget: int) -> str:
    """The model's record of an agent's run (one call per chunk, joined).

    Raises LLMError when it comes back empty or a call fails, UnusableReplyError when it is
    over ``limits.max_fact_bytes``.
    """
    today = run.today_iso()
    overhead = estimate_tokens(run.render("procedural_summary", today=today, messages=""))
    parts: list[str] = []
    for chunk in chunk_lines(lines, token_budget, overhead):
        system = run.render("procedural_summary", today=today, messages=chunk)
        response = run.complete(
            "procedural_summary",
            system,
            [{"role": "user", "content": "Write the record of the run above."}],
            json_output=False,
        )
        if response.text.strip():
            parts.append(response.text.strip())
    if not parts:
        raise LLMError("the procedural summary came back empty")
    summary = "\n\n".join(parts)
    limits.check_size(summary, "the procedural summary")
    return summary
