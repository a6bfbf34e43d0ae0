"""One plan's conversation with the model: the calls it makes, their usage, its warnings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from mem0_mcp.llm.base import LLM, ChatMessage, LLMResponse
from mem0_mcp.llm.jsonparse import complete_json
from mem0_mcp.llm.prompts import PromptSet
from mem0_mcp.models import Usage

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """The model, prompts and clock of one plan; every call's tokens land in ``usage``."""

    llm: LLM
    prompts: PromptSet
    today: Callable[[], date] = date.today
    max_tokens: int | None = None
    usage: Usage = field(default_factory=Usage)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Log ``message`` and keep it (once) for the add's result."""
        logger.warning(message)
        if message not in self.warnings:
            self.warnings.append(message)

    def today_iso(self) -> str:
        """Today as an ISO date, for the prompts."""
        return self.today().isoformat()

    def render(self, name: str, **values: object) -> str:
        """The prompt template ``name`` filled in. Raises PromptError for a broken template."""
        return self.prompts.render(name, **values)

    def complete(
        self, prompt: str, system: str, messages: list[ChatMessage], *, json_output: bool
    ) -> LLMResponse:
        """One call, counted. Raises LLMError."""
        response = self.llm.complete(
            system, messages, json_output=json_output, max_tokens=self.max_tokens, prompt=prompt
        )
        self.usage.record(response.input_tokens, response.output_tokens)
        return response

    def complete_json(self, prompt: str, system: str, user: str, key: str) -> dict[str, object]:
        """One call expecting a JSON object with ``key`` (one repair call if needed), counted.

        Its values are whatever the model wrote: callers check each before use.
        Raises LLMError (JSONParseError when no usable object came back).
        """
        return complete_json(
            self.llm,
            system,
            [{"role": "user", "content": user}],
            prompt=prompt,
            usage=self.usage,
            max_tokens=self.max_tokens,
            expect_key=key,
        )
