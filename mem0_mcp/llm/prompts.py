"""Prompt templates as editable files.

Bundled templates come from the package (``mem0_mcp/prompts`` in a wheel) or, in an editable
install, from the repository's top-level ``prompts/``. ``settings.prompts_dir`` files of the same
name replace them one by one, so a user can change a single prompt without forking the rest.

Variables are written ``{{name}}``; double braces keep the many JSON examples in the prompts
free of escaping. Filling a template with a variable missing is an error, not a silent blank.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from mem0_mcp.errors import ConfigError

logger = logging.getLogger(__name__)

PROMPT_NAMES = (
    "fact_extraction",
    "agent_fact_extraction",
    "update_decision",
    "procedural_summary",
    "image_description",
    "language_rule",
    "extract_and_decide",
)
# Read from the same folder by the graph pipeline; listed so an override is not reported as unknown.
OTHER_PROMPT_NAMES = ("graph_extraction", "graph_contradiction")

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class PromptError(ConfigError):
    """A prompt template is missing or was filled without one of its variables."""


def bundled_dir() -> Path | None:
    """The folder of the prompt templates shipped with the package; None if it is missing."""
    try:
        pkg = resources.files("mem0_mcp").joinpath("prompts")
        if pkg.is_dir():
            return Path(str(pkg))
    except (ModuleNotFoundError, OSError, TypeError):
        pass
    # Editable install: the package sits in the repository, prompts/ next to it.
    repo = Path(__file__).resolve().parents[2] / "prompts"
    return repo if repo.is_dir() else None


# The old private name, until mem0_mcp.graph.extraction imports bundled_dir (#12).
_bundled_dir = bundled_dir


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str
    source: str

    @property
    def variables(self) -> set[str]:
        return set(_VAR.findall(self.template))

    def render(self, **values: object) -> str:
        missing = sorted(self.variables - values.keys())
        if missing:
            raise PromptError(
                f"prompt {self.name!r} ({self.source}) needs the variable(s) {', '.join(missing)}; "
                f"got {', '.join(sorted(values)) or 'none'}"
            )
        return _VAR.sub(lambda m: str(values[m.group(1)]), self.template)


@dataclass
class PromptSet:
    prompts: dict[str, Prompt] = field(default_factory=dict)

    def get(self, name: str) -> Prompt:
        try:
            return self.prompts[name]
        except KeyError:
            raise PromptError(f"no prompt named {name!r}; known: {', '.join(sorted(self.prompts))}") from None

    def render(self, name: str, **values: object) -> str:
        prompt = self.get(name)
        # The language rule is a prompt of its own so it can be replaced once for all templates.
        if "language_rule" in prompt.variables and "language_rule" not in values:
            values["language_rule"] = self.get("language_rule").template.strip()
        return prompt.render(**values)

    @classmethod
    def load(cls, override_dir: Path | None = None, names: Sequence[str] = PROMPT_NAMES) -> PromptSet:
        """The prompts ``names`` (default: the fact pipeline's), each from ``override_dir`` when
        it has the file, else bundled. Raises ``PromptError`` when one is found in neither."""
        if override_dir is not None and not override_dir.is_dir():
            raise PromptError(f"prompts_dir {override_dir} is not a folder")
        bundled = bundled_dir()
        prompts: dict[str, Prompt] = {}
        for name in names:
            for folder, kind in ((override_dir, "prompts_dir"), (bundled, "bundled")):
                if folder is None:
                    continue
                path = folder / f"{name}.md"
                if path.is_file():
                    try:
                        prompts[name] = Prompt(name, path.read_text(encoding="utf-8"), str(path))
                    except (OSError, UnicodeDecodeError) as exc:
                        raise PromptError(f"prompt {name!r}: cannot read {path}: {exc}") from exc
                    if kind == "prompts_dir":
                        logger.info("prompt %s: using %s", name, path)
                    break
            else:
                raise PromptError(
                    f"prompt {name!r}: no {name}.md in "
                    f"{override_dir or '(no prompts_dir)'} nor in the bundled prompts ({bundled}); "
                    "reinstall mem0-mcp or add the file to prompts_dir"
                )
        if override_dir is not None:
            unknown = sorted(
                p.stem
                for p in override_dir.glob("*.md")
                if p.stem not in (*PROMPT_NAMES, *OTHER_PROMPT_NAMES)
            )
            if unknown:
                # Other components (the graph) read their own prompts from the same folder.
                logger.info(
                    "prompts_dir %s: not LLM-pipeline prompts: %s (pipeline names: %s)",
                    override_dir,
                    ", ".join(unknown),
                    ", ".join(PROMPT_NAMES),
                )
        return cls(prompts)

    @classmethod
    def from_mapping(cls, templates: Mapping[str, str]) -> PromptSet:
        """For tests and embedding: templates given as strings, bundled ones fill the rest."""
        base = cls.load()
        for name, text in templates.items():
            base.prompts[name] = Prompt(name, text, "<inline>")
        return base
