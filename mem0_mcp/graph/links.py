"""Graph links for memory search: the memories about an entity a query names by its role.

"Who is my sister's husband?" names no one; the graph knows the sister (a relation of the user)
and her husband (a relation of hers), and the memories those facts came from answer it.
"""

from __future__ import annotations

import re

from mem0_mcp.graph.extraction import EXPLICIT_SOURCE, normalize_name, self_name
from mem0_mcp.graph.store import GraphStore
from mem0_mcp.models import GraphRelation, Scope

_WORD = re.compile(r"\w+", re.UNICODE)


def memory_links(store: GraphStore, scope: Scope, query: str) -> dict[str, float]:
    """Memory id -> 1.0 for the memories that state facts about an entity the query names by
    its role to another ("my sister", "the user's dog", "Alice's manager"): the role word
    names a relation of the owner (``sister_of``) or the type of its other end (``dog``).
    Those facts are one hop from that entity; the relations that resolved the role are left
    out, since their memories carry the query's own words. Empty when the query names no such
    entity. Raises ``StoreError``."""
    chains = role_chains(query)
    if not chains:
        return {}
    facts: list[GraphRelation] = []
    with store.burst():
        for owner, roles in chains:
            norm = normalize_name(self_name(scope) if owner is None else owner)
            current = {e.id for e in store.named(scope, norm)}
            bridges: set[str] = set()
            for role in roles:
                found: set[str] = set()
                for r in store.relations(scope, list(current), depth=1):
                    for here, there, kind in (
                        (r.source_id, r.destination_id, r.destination_type),
                        (r.destination_id, r.source_id, r.source_type),
                    ):
                        if here in current and _names_role(role, r.relation, kind):
                            found.add(there)
                            bridges.add(r.id)
                if not found:
                    break
                current = found
            if not bridges:
                continue
            near = store.relations(scope, list(current), depth=1)
            facts.extend(r for r in near if r.id not in bridges)
    return {m: 1.0 for r in facts for m in r.sources if m != EXPLICIT_SOURCE}


# "my sister", "our dog", "the user's dog", "Alice's manager", chained: "my sister's husband".
_OWNER_SELF = frozenset({"my", "our", "user's", "user’s"})
_NOT_OWNERS = frozenset(
    "what who where when how why that it there here he she let this which".split()  # noqa: SIM905
)
_TOKEN = re.compile(r"[^\W_][\w-]*(?:['’]s)?", re.UNICODE)


def role_chains(query: str) -> list[tuple[str | None, list[str]]]:
    """(owner name, None for the speaker or user; role words in order) for each possessive in
    ``query``: "my sister's husband" -> (None, ["sister", "husband"])."""
    tokens = _TOKEN.findall(query)
    out: list[tuple[str | None, list[str]]] = []
    i = 0
    while i < len(tokens) - 1:
        tok = tokens[i]
        low = tok.casefold()
        owner: str | None
        if low in _OWNER_SELF:
            owner = None
        elif low.endswith(("'s", "’s")) and tok[0].isupper() and low[:-2] not in _NOT_OWNERS:
            owner = tok[:-2]
        else:
            i += 1
            continue
        roles: list[str] = []
        j = i + 1
        while j < len(tokens):
            word = tokens[j].casefold()
            possessive = word.endswith(("'s", "’s"))
            roles.append(word[:-2] if possessive else word)
            j += 1
            if not possessive:
                break
        out.append((owner, roles))
        i = j
    return out


def _stem(word: str) -> str:
    return word[:5] if len(word) > 5 else word.removesuffix("s")


def _names_role(role: str, relation: str, entity_type: str) -> bool:
    """Whether the role word is the relation's ("sister" ~ sister_of) or the end's type ("dog")."""
    wanted = _stem(role)
    return any(
        _stem(w) == wanted for w in _WORD.findall(f"{relation} {entity_type}".casefold().replace("_", " "))
    )
