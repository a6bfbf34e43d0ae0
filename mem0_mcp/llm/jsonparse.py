"""Getting JSON out of model output that is almost JSON.

Models wrap JSON in code fences, add a sentence before or after it, or leave a trailing comma.
We take the first balanced object out of the text; if that still fails, the model gets one
chance to repair its own answer, and then we give up with an exception the caller turns into a
verbatim fallback.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from mem0_mcp.llm.base import LLM, ChatMessage, LLMError
from mem0_mcp.models import Usage

logger = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


# Bounds on what a model may send back. A real answer of this project is a few KB and a few levels
# deep; past these it is broken or hostile, and parsing it could exhaust the stack or the memory.
MAX_REPLY_CHARS = 1024 * 1024
MAX_JSON_DEPTH = 32
# A JSON object as parsed: values are Any because the graph layer's readers index into them; the
# planner reads them as ``object`` (mem0_mcp.llm.run) and checks every value it uses.
JSONObject = dict[str, Any]

_BRACKETS = re.compile(r'"(?:\\.|[^"\\])*"|[\[\]{}]')


class JSONParseError(LLMError):
    """The model's answer holds no usable JSON object."""


class ReplyTooLargeError(JSONParseError):
    """The model's answer is larger or deeper than any real answer; it is not parsed, nor repaired."""


def check_reply_bounds(text: str) -> None:
    """Raise ReplyTooLargeError when ``text`` is over MAX_REPLY_CHARS or nests over MAX_JSON_DEPTH.

    Brackets inside JSON strings do not count, so quoted prose with braces passes.
    """
    if len(text) > MAX_REPLY_CHARS:
        raise ReplyTooLargeError(
            f"the model's answer has {len(text):,} characters, over the limit of {MAX_REPLY_CHARS:,}"
        )
    depth = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ReplyTooLargeError(
                    f"the model's answer nests deeper than {MAX_JSON_DEPTH} levels; not parsed"
                )
        elif token in "]}":
            depth = max(0, depth - 1)


def _scan(text: str) -> JSONObject | None:
    """The first JSON object starting at any "{" of the text (prose and stray braces around it)."""
    decoder = json.JSONDecoder()
    for source in (text, _TRAILING_COMMA.sub(r"\1", text)):
        idx = source.find("{")
        while idx != -1:
            try:
                value, _ = decoder.raw_decode(source, idx)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return value
            idx = source.find("{", idx + 1)
    return None


def _try(candidate: str) -> JSONObject | None:
    for text in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def extract_json(text: str) -> JSONObject:
    """The JSON object in ``text``.

    Raises ReplyTooLargeError past the bounds above, JSONParseError when there is no object.
    """
    check_reply_bounds(text)
    stripped = text.strip()
    candidates = [stripped]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        value = _try(candidate)
        if value is not None:
            return value
    value = _scan(text)
    if value is not None:
        return value
    preview = stripped[:200] + ("..." if len(stripped) > 200 else "")
    raise JSONParseError(f"no JSON object in the model's answer: {preview!r}")


REPAIR_PROMPT = "json_repair"
_REPAIR_SYSTEM = (
    "You fix malformed JSON. Reply with the corrected JSON object only: no explanation, "
    "no code fence. Keep every value; only repair the syntax and shape."
)


def complete_json(
    llm: LLM,
    system: str,
    messages: list[ChatMessage],
    *,
    prompt: str,
    usage: Usage,
    max_tokens: int | None = None,
    expect_key: str | None = None,
) -> JSONObject:
    """One call expecting JSON, and one repair call if the answer is unusable.

    ``prompt`` names the template of ``system``. Every call (repair included) is counted in
    ``usage`` as it returns, so the tally is right even when this raises.
    """
    response = llm.complete(system, messages, json_output=True, max_tokens=max_tokens, prompt=prompt)
    usage.record(response.input_tokens, response.output_tokens)
    try:
        return _check(extract_json(response.text), expect_key)
    except ReplyTooLargeError:
        raise  # asking for a repair would send the whole thing back
    except JSONParseError as first:
        logger.info("%s: invalid JSON from the model, asking it to repair: %s", llm.name, first)
        hint = f' The object must have the key "{expect_key}".' if expect_key else ""
        repair = llm.complete(
            _REPAIR_SYSTEM + hint,
            [{"role": "user", "content": f"Error: {first}\n\nThe malformed answer:\n{response.text}"}],
            json_output=True,
            max_tokens=max_tokens,
            prompt=REPAIR_PROMPT,
        )
        usage.record(repair.input_tokens, repair.output_tokens)
        try:
            return _check(extract_json(repair.text), expect_key)
        except JSONParseError as second:
            raise JSONParseError(f"invalid JSON after one repair attempt: {second}") from second


def _check(value: JSONObject, expect_key: str | None) -> JSONObject:
    if expect_key is not None and expect_key not in value:
        raise JSONParseError(f'the JSON object lacks the key "{expect_key}" (keys: {sorted(value)})')
    return value
