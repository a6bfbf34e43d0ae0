"""Prompt files, overrides, JSON extraction, the backend factory and import hygiene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mem0_mcp.config import Settings
from mem0_mcp.errors import ConfigError
from mem0_mcp.llm import build_llm, resolve_provider
from mem0_mcp.llm.jsonparse import JSONParseError, complete_json, extract_json
from mem0_mcp.llm.prompts import PROMPT_NAMES, PromptError, PromptSet
from mem0_mcp.models import Usage
from tests.support.fake_llm import FakeLLM

REPO = Path(__file__).resolve().parents[1]

# Distinctive phrases of Mem0's own prompts: ours are written from scratch and must not reuse them.
MEM0_PHRASES = [
    "You are a Personal Information Organizer",
    "specialized in accurately storing facts, user memories, and preferences",
    "You are a smart memory manager which controls the memory of a system",
    "Here are some few shot examples",
    "Types of Information to Remember",
]


def test_bundled_prompts_load_with_their_variables():
    ps = PromptSet.load()
    assert set(ps.prompts) == set(PROMPT_NAMES)
    assert ps.get("fact_extraction").variables == {"today", "messages", "language_rule"}
    assert ps.get("agent_fact_extraction").variables == {"today", "messages", "language_rule"}
    assert ps.get("update_decision").variables == {"today", "existing_memories", "new_facts", "language_rule"}
    assert ps.get("procedural_summary").variables == {"today", "messages", "language_rule"}
    assert ps.get("image_description").variables == {"context"}
    assert ps.get("extract_and_decide").variables == {
        "today",
        "messages",
        "existing_memories",
        "language_rule",
    }
    for name in PROMPT_NAMES:
        text = (REPO / "prompts" / f"{name}.md").read_text()
        for phrase in MEM0_PHRASES:
            assert phrase.lower() not in text.lower(), (name, phrase)


def test_render_fills_the_language_rule_and_rejects_missing_variables():
    ps = PromptSet.load()
    text = ps.render("fact_extraction", today="2026-11-26", messages="user: hi")
    assert "Never translate" in text and "{{" not in text
    with pytest.raises(PromptError, match=r"needs the variable.*messages"):
        ps.render("fact_extraction", today="2026-11-26")


def test_prompts_dir_overrides_one_prompt(tmp_path):
    (tmp_path / "fact_extraction.md").write_text("CUSTOM {{ today }} {{messages}}")
    (tmp_path / "language_rule.md").write_text("Answer in Latin.")
    (tmp_path / "notes.md").write_text("ignored")
    ps = PromptSet.load(tmp_path)
    assert ps.render("fact_extraction", today="T", messages="M") == "CUSTOM T M"
    assert "Answer in Latin." in ps.render("update_decision", today="T", existing_memories="", new_facts="")
    assert ps.get("update_decision").source.endswith("prompts/update_decision.md")


def test_prompts_dir_must_exist(tmp_path):
    with pytest.raises(PromptError, match="not a folder"):
        PromptSet.load(tmp_path / "nope")


def test_override_with_an_unknown_variable_fails_clearly(tmp_path):
    (tmp_path / "fact_extraction.md").write_text("{{messages}} {{speaker}}")
    ps = PromptSet.load(tmp_path)
    with pytest.raises(PromptError, match="speaker"):
        ps.render("fact_extraction", today="T", messages="M")


def test_prompts_ship_in_the_wheel():
    text = (REPO / "pyproject.toml").read_text()
    assert '"prompts" = "mem0_mcp/prompts"' in text


@pytest.mark.parametrize(
    "raw",
    [
        '{"facts": ["a"]}',
        '```json\n{"facts": ["a"]}\n```',
        '```\n{"facts": ["a"]}\n```',
        'Here are the facts: {"facts": ["a"]} Let me know if you need more.',
        '{"facts": ["a",],}',
        'Thinking about "braces {" first.\n{"facts": ["a"]}',
    ],
)
def test_extract_json(raw):
    assert extract_json(raw) == {"facts": ["a"]}


def test_extract_json_fails_cleanly():
    with pytest.raises(JSONParseError, match="no JSON object"):
        extract_json("I could not find any facts.")
    with pytest.raises(JSONParseError):
        extract_json('["a list", "not an object"]')


def test_complete_json_repairs_once_then_gives_up():
    llm = FakeLLM(["{facts: [a]}", '{"facts": ["a"]}'])
    usage = Usage()
    message = [{"role": "user", "content": "x"}]
    assert complete_json(llm, "sys", message, prompt="p", usage=usage, expect_key="facts") == {"facts": ["a"]}
    assert usage.llm_calls == 2 and "fix malformed JSON" in llm.calls[1].system
    assert [c.prompt for c in llm.calls] == ["p", "json_repair"]
    assert '"facts"' in llm.calls[1].system
    llm = FakeLLM(["nope", "nope again", "never asked"])
    usage = Usage()
    with pytest.raises(JSONParseError, match="after one repair"):
        complete_json(llm, "sys", message, prompt="p", usage=usage)
    assert len(llm.calls) == 2 and usage.llm_calls == 2


def _settings(tmp_path, **kw) -> Settings:
    return Settings(data_dir=tmp_path, **kw)


def test_provider_selection(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert resolve_provider(_settings(tmp_path)) == "none"
    assert build_llm(_settings(tmp_path)) is None
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert resolve_provider(_settings(tmp_path)) == "anthropic"
    llm = build_llm(_settings(tmp_path))
    assert llm is not None and llm.name == "anthropic" and llm.supports_vision
    # An explicit setting wins over the key in the environment.
    assert build_llm(_settings(tmp_path, llm_provider="none")) is None
    llm = build_llm(
        _settings(
            tmp_path,
            llm_provider="openai_compatible",
            llm_base_url="http://127.0.0.1:1",
            llm_model="llama3.1",
        )
    )
    assert llm is not None and llm.name == "openai_compatible"


def test_provider_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        build_llm(_settings(tmp_path, llm_provider="anthropic"))
    llm = build_llm(_settings(tmp_path, llm_provider="anthropic", llm_api_key="k", llm_model="claude-x"))
    assert llm is not None and llm.model == "claude-x"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="LLM_BASE_URL"):
        build_llm(_settings(tmp_path, llm_provider="openai_compatible"))
    with pytest.raises(ConfigError, match="sampling"):
        build_llm(_settings(tmp_path, llm_provider="sampling"))


def test_llm_package_is_import_light_and_mcp_free():
    code = (
        "import sys\n"
        "import mem0_mcp.llm, mem0_mcp.llm.pipeline, mem0_mcp.llm.prompts, mem0_mcp.llm.jsonparse\n"
        "heavy = [m for m in ('anthropic', 'httpx', 'mcp') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import mem0_mcp.llm.anthropic_llm, mem0_mcp.llm.openai_compatible, mem0_mcp.server.sampling\n"
        "assert 'mcp' not in sys.modules, 'the LLM layer imported mcp'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)
