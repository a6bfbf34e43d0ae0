"""Property tests over every MCP tool's arguments (issue #16), through the real in-memory client.

For any argument value (wrong types, hostile Unicode, injection strings, deep nesting, huge
sizes) a call returns a result or an error that names the argument, never a crash or internal
text, never another scope's data; and the server keeps serving after each call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import InvalidInputError
from tests.support.engine import make_settings
from tests.support.hostile import (
    SyncClient,
    client_can_send,
    deep_values,
    filters,
    hostile_text,
    ids,
    json_values,
    messages,
    metadata,
    nested,
    result_text,
    strings,
    sync_client,
    wrong_types,
)
from tests.test_stdio import call as stdio_call
from tests.test_stdio import initialized_serve

VICTIM = "victim-7f3a"
CANARY = "CANARY-b7e1-secret"
# Internal text a caller must never read: engine, store and interpreter internals.
LEAKS = (
    "lance",
    ".rs:",
    "Traceback",
    "TypeError",
    "KeyError",
    "RecursionError",
    "codec can't",
    "Invalid Request",
)
EXAMPLES = 50
OWN = "<the id of a memory of the default user>"

scope_ids = st.one_of(hostile_text, wrong_types).filter(
    lambda v: not (isinstance(v, str) and v.strip() == VICTIM)
)
limits = st.one_of(st.integers(min_value=-5, max_value=10**6), wrong_types, hostile_text)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(), wrong_types, hostile_text
)
flags = st.one_of(st.booleans(), wrong_types, hostile_text)
scope_fields = {"user_id": scope_ids, "agent_id": scope_ids, "run_id": scope_ids}

# tool -> (arguments of a well-formed call, {argument: what to try in it})
TOOLS: dict[str, tuple[dict[str, Any], dict[str, st.SearchStrategy[Any]]]] = {
    "add_memory": (
        {"text": "likes green tea"},
        {
            "text": st.one_of(strings, wrong_types),
            "messages": messages,
            "metadata": metadata,
            "infer": flags,
            "memory_type": st.one_of(hostile_text, wrong_types, st.sampled_from(["procedural", "semantic"])),
            "timestamp": st.one_of(hostile_text, numbers, st.sampled_from(["2024-02-30", "-1", "1e308"])),
            "supersedes": st.one_of(st.lists(ids, max_size=25), wrong_types),
            **scope_fields,
        },
    ),
    "search_memory": (
        {"query": "tea"},
        {
            "query": st.one_of(strings, wrong_types),
            "filters": filters,
            "limit": limits,
            "threshold": numbers,
            "include_superseded": flags,
            **scope_fields,
        },
    ),
    "list_memories": (
        {},
        {
            "filters": filters,
            "limit": limits,
            "cursor": st.one_of(strings, wrong_types),
            "include_superseded": flags,
            **scope_fields,
        },
    ),
    "get_memory": ({"memory_id": "no-such-id"}, {"memory_id": ids}),
    "delete_memory": ({"memory_id": "no-such-id"}, {"memory_id": ids}),
    "memory_history": ({"memory_id": "no-such-id"}, {"memory_id": ids}),
    "restore_memory": ({"memory_id": "no-such-id"}, {"memory_id": ids}),
    "update_memory": (
        {"memory_id": OWN, "text": "new text"},
        {"memory_id": ids, "text": st.one_of(strings, wrong_types), "metadata": metadata},
    ),
    "delete_all_memories": ({"run_id": "throwaway"}, scope_fields),
    "search_graph": (
        {"query": "Alice"},
        {"query": st.one_of(strings, wrong_types), "limit": limits, **scope_fields},
    ),
    "get_entity": (
        {"name": "Alice"},
        {"name": st.one_of(strings, wrong_types), "depth": limits, **scope_fields},
    ),
    "find_path": (
        {"source": "Alice", "target": "Acme"},
        {"source": ids, "target": ids, "max_hops": limits, **scope_fields},
    ),
    "add_relation": (
        {"source": "Alice", "relation": "works_at", "destination": "Acme", "run_id": "graph-props"},
        {
            "source": ids,
            "relation": ids,
            "destination": ids,
            "source_type": ids,
            "destination_type": ids,
            **scope_fields,
        },
    ),
    "delete_relation": (
        {"source": "Alice", "relation": "works_at", "destination": "Acme", "run_id": "graph-props"},
        {"source": ids, "relation": ids, "destination": ids, **scope_fields},
    ),
    "query_graph": (
        {"cypher": "MATCH (a:Entity) RETURN a.name LIMIT 3"},
        {
            "cypher": st.one_of(strings, wrong_types),
            "params": st.one_of(json_values, deep_values),
            "limit": limits,
        },
    ),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncClient]:
    data_dir: Path = tmp_path_factory.mktemp("props") / "data"
    settings_ = make_settings(data_dir, graph_enabled=True, graph_query_enabled=True)
    with sync_client(settings_) as c:
        # Another user's memories, with the metadata shapes the filters meet: lists, '-' keys.
        for i, meta in enumerate([{"my-key": ["a", "b"], "topic": "x"}, {"my-key": "abc", "a.b": 1}, {}]):
            ok(c.call("add_memory", {"text": f"{CANARY} {i} tea", "user_id": VICTIM, "metadata": meta}))
        ok(
            c.call(
                "add_relation",
                {"source": CANARY, "relation": "knows", "destination": "Alice", "user_id": VICTIM},
            )
        )
        # The default user's scope is not empty either, with the same shapes.
        for i, meta in enumerate(
            [{"my-key": ["a", "c"], "topic": "y"}, {"my-key": "abd", "n": 2}, {"sp ace": "z"}]
        ):
            added = ok(c.call("add_memory", {"text": f"likes tea number {i}", "metadata": meta}))
        c.own_id = added["results"][0]["id"]
        yield c
        # Nothing any example did reached the victim's memories.
        listed = ok(c.call("list_memories", {"user_id": VICTIM, "limit": 100}))
        assert listed["total"] == 3


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result_text(result)
    return dict(result.structured_content or {})


def check_call(client: SyncClient, tool: str, arguments: dict[str, Any], field: str) -> None:
    """The property: a result, or an error naming ``field``; no leak; the server still serves."""
    assume(client_can_send(tool, arguments))
    result = client.call(tool, arguments)  # a protocol error (e.g. -32600) would raise here
    text = result_text(result)
    assert CANARY not in text or (tool == "query_graph"), f"another scope's data in {tool}: {text[:300]}"
    if result.is_error:
        assert field in text, f"{tool}({field}=...) error does not name {field!r}: {text[:500]}"
        for leak in LEAKS:
            assert leak not in text, f"{tool} leaks {leak!r}: {text[:500]}"
    else:
        json.dumps(result.structured_content)  # what the client got is plain JSON
    follow_up = client.call("search_memory", {"query": "tea", "limit": 3})
    assert not follow_up.is_error, result_text(follow_up)


def tool_case(tool: str) -> Any:
    base, fields = TOOLS[tool]
    return st.sampled_from(sorted(fields)).flatmap(
        lambda field: st.tuples(st.just(field), fields[field]).map(lambda fv: (fv[0], {**base, fv[0]: fv[1]}))
    )


def run_case(client: SyncClient, tool: str, case: tuple[str, dict[str, Any]]) -> None:
    field, arguments = case
    arguments = {k: client.own_id if v == OWN else v for k, v in arguments.items()}
    check_call(client, tool, arguments, field)


common = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    derandomize=True,
)


@common
@given(case=tool_case("add_memory"))
@example(case=("text", {"text": "bad \ud800 text"}))
@example(case=("metadata", {"text": "deep", "metadata": nested(200)}))
@example(case=("metadata", {"text": "surrogate in metadata", "metadata": {"k": "\ud800"}}))
def test_add_memory(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "add_memory", case)


@common
@given(case=tool_case("search_memory"))
@example(case=("filters", {"query": "tea", "filters": {"my-key": {"contains": "a"}}}))
@example(case=("query", {"query": "\ud800"}))
def test_search_memory(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "search_memory", case)


@common
@given(case=tool_case("list_memories"))
@example(case=("filters", {"filters": {"my-key": {"contains": "a"}}}))
@example(case=("user_id", {"user_id": "\ud800"}))
def test_list_memories(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "list_memories", case)


@common
@given(case=tool_case("get_memory"))
@example(case=("memory_id", {"memory_id": "\ud800"}))
def test_get_memory(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "get_memory", case)


@common
@given(case=tool_case("update_memory"))
def test_update_memory(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "update_memory", case)


@common
@given(case=tool_case("delete_memory"))
def test_delete_memory(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "delete_memory", case)


@common
@given(case=tool_case("delete_all_memories"))
def test_delete_all_memories(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "delete_all_memories", case)


@common
@given(case=tool_case("memory_history"))
def test_memory_history(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "memory_history", case)


@common
@given(case=tool_case("restore_memory"))
def test_restore_memory(client: SyncClient, case: tuple[str, dict[str, Any]]) -> None:
    run_case(client, "restore_memory", case)


@pytest.mark.parametrize(
    "tool", ["search_graph", "get_entity", "find_path", "add_relation", "delete_relation", "query_graph"]
)
@common
@given(data=st.data())
def test_graph_tools(client: SyncClient, tool: str, data: st.DataObject) -> None:
    run_case(client, tool, data.draw(tool_case(tool)))


# ---------------------------------------------------------------- the faults, one by one


@pytest.mark.parametrize("key", ["my-key", "a.b", "sp ace", "clé", "x:y/z", "_k"])
def test_filters_on_keys_with_dashes_dots_and_spaces(memory: Memory, key: str) -> None:
    """`contains` on a key with '-' raised Lance's 'Invalid JSONPath' with a Rust source path; a
    key holding a list in one memory failed `contains` for the whole scope (issue #16)."""
    memory.add("list valued", user_id="u", metadata={key: ["a", "b"]})
    memory.add("string valued", user_id="u", metadata={key: "xa'\"\\y"})
    memory.add("number valued", user_id="u", metadata={key: 5})
    memory.add("no key", user_id="u", metadata={"other": "a"})

    def listed(cond: Any) -> set[str]:
        return {m.memory for m in memory.get_all(user_id="u", filters={key: cond}).results}

    assert listed({"contains": "a"}) == {"list valued", "string valued"}
    assert listed({"contains": "'\"\\"}) == {"string valued"}
    assert listed({"contains": "b"}) == {"list valued"}
    assert listed({"contains": "zz"}) == set()
    assert listed({"contains": 5}) == set()  # a number is neither a list holding 5 nor a string
    assert {
        m.memory for m in memory.search("valued", user_id="u", filters={key: {"contains": "a"}}).results
    } == {
        "list valued",
        "string valued",
    }


def test_lone_surrogates_and_deep_metadata_are_refused_by_name(memory: Memory) -> None:
    with pytest.raises(InvalidInputError, match=r"^messages: contains a lone surrogate \(U\+D800"):
        memory.add("bad \ud800", user_id="u")
    with pytest.raises(InvalidInputError, match=r"^metadata.k: contains a lone surrogate"):
        memory.add("ok", user_id="u", metadata={"k": "\udfff"})
    with pytest.raises(InvalidInputError, match=r"^metadata: nests objects and lists deeper than 32"):
        memory.add("ok", user_id="u", metadata=nested(200))
    with pytest.raises(InvalidInputError, match=r"^user_id: contains a lone surrogate"):
        memory.get_all(user_id="\ud800")
    with pytest.raises(InvalidInputError, match=r"^filters.k: contains a lone surrogate"):
        memory.get_all(user_id="u", filters={"k": "\ud800"})
    memory.add("ok", user_id="u", metadata=nested(31))
    assert memory.get_all(user_id="u").total == 1


@pytest.mark.parametrize("text", ["null", "[1, 2]", '{"a": 1}', "[]"])
def test_text_that_reads_as_json_is_stored_as_text(client: SyncClient, text: str) -> None:
    """The SDK read string arguments as JSON when the parameter is not exactly `str`: `null`
    became no text ("give exactly one of text or messages"), `[1, 2]` a list (refused)."""
    added = ok(client.call("add_memory", {"text": text, "run_id": "json-looking"}))
    assert added["results"][0]["memory"] == text
    assert ok(client.call("list_memories", {"run_id": "null"}))["total"] == 0
    listed = ok(client.call("list_memories", {"run_id": "json-looking", "limit": 10}))
    assert text in {m["memory"] for m in listed["results"]}


# ---------------------------------------------------------------- on the wire (stdio subprocess)


@pytest.mark.slow
def test_stdio_lone_surrogate_and_deep_metadata_get_errors_naming_the_field(tmp_path: Path) -> None:
    """Both lines are valid JSON-RPC; the SDK's JSON reader refused them with "-32600 Invalid
    Request" (issue #16). Now the tool answers, naming the argument, and the server serves on."""
    with initialized_serve(tmp_path) as (proc, chan):
        # json.dumps writes the lone surrogate as the escape "\ud800", as a client would send it.
        chan.send(stdio_call(2, "add_memory", {"text": "bad \ud800 text"}))
        chan.send(stdio_call(3, "add_memory", {"text": "deep", "metadata": nested(200)}))
        chan.send(stdio_call(4, "search_memory", {"query": "x", "filters": {"k": nested(150, "list")}}))
        replies = {n: chan.recv_id(n, timeout=180)[0] for n in (2, 3, 4)}
        for n, field, words in (
            (2, "text", "valid Unicode"),
            (3, "metadata", "32 levels"),
            (4, "filters", "32"),
        ):
            result = replies[n].get("result")
            assert result is not None and result["isError"] is True, replies[n]
            text = result["content"][0]["text"]
            assert f"{field}: " in text and words in text, text
        chan.send(stdio_call(5, "add_memory", {"text": "still serving \U0001f600"}))
        added, _ = chan.recv_id(5, timeout=60)
        assert added["result"]["structuredContent"]["results"][0]["event"] == "ADD"
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
