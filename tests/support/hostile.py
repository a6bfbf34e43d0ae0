"""Hostile tool arguments for the property tests, and a synchronous MCP client for hypothesis.

Hypothesis drives synchronous test functions; the server and its in-memory client live in an
anyio blocking portal (an event loop in a thread) so that one server serves every example.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import strategies as st
from mcp.client import Client
from mcp_types import CallToolRequestParams, CallToolResult

from mem0_mcp.config import Settings
from tests.support.server import fake_server

# Strings that break naive SQL, Lance filter, JSON path, LIKE or shell splicing.
INJECTIONS = [
    "' OR 1=1 --",
    "' OR '1'='1",
    '" OR ""="',
    "x'); DROP TABLE memories; --",
    "\\",
    "\\'",
    "a\\' OR user_id IS NOT NULL OR '",
    "%",
    "_",
    "%' OR user_id LIKE '%",
    "user_id = 'victim'",
    "$.user_id",
    '$["user_id"]',
    "json_get_string(metadata, 'k')",
    "*",
    "NULL",
    "null",
    "true",
    "[]",
    "{}",
    '{"a": 1}',
    "1",
    "-1",
    "1e999",
    "MATCH (n) DETACH DELETE n",
    "`",
    "$(id)",
]
# Unicode the stores must take or refuse by name: lone surrogates, NUL, controls, bidi, combining
# marks, emoji (outside the BMP), zero-width and noncharacters.
UNICODE_EDGES = [
    "\ud800",
    "a\udfffb",
    "\udc80\udc81",
    "\x00",
    "a\x00b",
    "\x01\x1f\x7f",
    "\u202eevil\u202c",
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "e\u0301\u0302\u0303",
    "\u0301",
    "\U0001f600\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\u200b\ufeff",
    "\uffff\ufffe",
    "\U0010ffff",
    "\u2028\u2029",
    " ",
    "\t\n",
    "",
]
# Filter keys as agents write them: the ones the key pattern allows and the ones it refuses.
FILTER_KEYS = ["my-key", "a.b", "sp ace", "topic", "_x", "-lead", "k%", "k_", "' OR 1=1 --", "clé", ""]
OPERATORS = ["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "like", "$eq"]

any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
hostile_text = st.one_of(
    st.sampled_from(INJECTIONS + UNICODE_EDGES),
    st.text(any_char, max_size=40),
    st.builds(lambda a, b: a + b, st.sampled_from(INJECTIONS + UNICODE_EDGES), st.text(any_char, max_size=8)),
)
long_text = st.sampled_from([1_000, 20_000, 70_000, 300_000]).map(lambda n: "long " * (n // 5))
strings = st.one_of(hostile_text, long_text)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(hostile_text, st.sampled_from(FILTER_KEYS)), inner, max_size=4),
    ),
    max_leaves=12,
)
wrong_types = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.integers(), hostile_text), max_size=3),
    st.dictionaries(hostile_text, st.integers(), max_size=2),
)


# Up to 230: the client itself refuses to send a request nested past ~250 levels.
def nested(depth: int, kind: str = "dict") -> Any:
    """A value ``depth`` levels deep: dicts in dicts, or lists in lists."""
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value} if kind == "dict" else [value]
    return value


deep_values = st.builds(nested, st.integers(min_value=20, max_value=230), st.sampled_from(["dict", "list"]))


def filter_condition() -> st.SearchStrategy[Any]:
    op_value = st.one_of(scalars, st.lists(scalars, max_size=3))
    return st.one_of(
        scalars,
        st.dictionaries(st.sampled_from(OPERATORS), op_value, min_size=1, max_size=2),
    )


filter_leaf = st.dictionaries(
    st.one_of(st.sampled_from(FILTER_KEYS), hostile_text), filter_condition(), min_size=1, max_size=2
)
filters = st.one_of(
    filter_leaf,
    st.builds(
        lambda op, subs: {op: subs}, st.sampled_from(["AND", "OR", "and"]), st.lists(filter_leaf, max_size=3)
    ),
    st.builds(lambda sub: {"NOT": sub}, filter_leaf),
    json_values,
    deep_values,
)
metadata = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(FILTER_KEYS), hostile_text), json_values, max_size=4),
    json_values,
    deep_values,
)
messages = st.one_of(
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant", "system", "tool", "bogus"]), "content": strings},
            optional={"name": hostile_text, "metadata": metadata},
        ),
        max_size=3,
    ),
    st.lists(
        st.fixed_dictionaries({"role": st.just("user"), "content": json_values}), min_size=1, max_size=2
    ),
    wrong_types,
)
ids = st.one_of(strings, wrong_types)


@dataclass
class SyncClient:
    """An in-memory MCP client whose calls block: usable from hypothesis' synchronous tests."""

    portal: BlockingPortal
    client: Client
    own_id: str = ""  # a memory of the default user, for calls that need one that exists

    def call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        return self.portal.call(self.client.call_tool, name, arguments)


@contextmanager
def sync_client(settings: Settings) -> Iterator[SyncClient]:
    """A server on the fake embedder in a background event loop, and a client connected to it."""
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(Client(fake_server(settings))) as client,
    ):
        yield SyncClient(portal, client)


def client_can_send(name: str, arguments: dict[str, Any]) -> bool:
    """Whether the MCP client can serialize these arguments at all (it cannot nest past ~250
    levels, nor put a lone surrogate in a nested object's key): what it cannot send, no server
    receives from it."""
    try:
        CallToolRequestParams(name=name, arguments=arguments).model_dump(by_alias=True, mode="json")
    except (ValueError, UnicodeEncodeError):
        return False
    return True


def result_text(result: CallToolResult) -> str:
    """Everything a client reads from a result: text blocks and structured content."""
    texts = [getattr(block, "text", "") for block in result.content]
    if result.structured_content is not None:
        texts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(texts)
