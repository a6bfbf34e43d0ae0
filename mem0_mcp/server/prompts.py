"""The one prompt: ``memory_guide``, when an agent should search, add, update and delete."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

MEMORY_GUIDE = """\
You have a long-term memory through the mem0-mcp tools. Use it like a careful assistant would.

When to search (search_memory):
- At the start of a task or conversation, search for the user's preferences and context that \
matter to it.
- Before giving advice, recommendations or answers that depend on who the user is or on \
earlier work.
- Use short, specific queries ("preferred programming language", "trip to Japan dates").

When to add (add_memory):
- The user states a lasting preference, fact about themselves, plan, decision, or correction.
- One fact per memory, written so it makes sense on its own, e.g. "Prefers window seats on \
flights". Pass metadata such as {"topic": "travel"} when it helps filtering.
- Never store passwords, API keys, tokens or other secrets, nor one-off chatter.

Keeping memory current (you are the memory manager when the server has no LLM):
1. Search before answering.
2. Add the new fact.
3. Read the add result. `inferred: true` means the server's LLM already compared it with the \
stored memories. Otherwise look at `related`: stored memories close to the new one.
   - The new fact replaces one (changed job, moved, new partner, diet or preference flipped, a \
correction): pass its id in `supersedes` when you add, e.g. add_memory(text="Works at \
Anthropic", supersedes=["<id of 'Works at Stripe'>"]); it leaves default search, history keeps it.
   - It says the same thing: an exact duplicate answers NONE with the stored id, nothing to do; \
the same fact in other words was stored a second time: pass the older one's id in `supersedes` \
(add the new wording again with supersedes=[id]) so one memory remains.
   - It refines one without replacing it, or is unrelated: nothing to do.
4. When the fact names a person, pet, place or organization by how it relates to the user or to \
someone else, pass those relations in `relations` (with no server LLM nobody else reads them): \
add_memory(text="Has a sister named Lena", relations=[{"source": "user", "relationship": \
"has_sister", "destination": "Lena", "destination_type": "person"}]), and later \
add_memory(text="Lena married Tom", relations=[{"source": "Lena", "relationship": "married_to", \
"destination": "Tom"}]). Then "Where does my sister's husband work?" finds the memories about \
Tom. Use the same name for the same one each time, and "user" for the user.

When to change:
- A memory is wrong or outdated: update_memory with the corrected text (history is kept).
- A change was a mistake (yours, the user's or the server's LLM's): memory_history shows it, \
restore_memory undoes the latest one.
- The user asks you to forget something: delete_memory. Use delete_all_memories only on an \
explicit request to wipe a whole scope.

Scope: leave user_id out to use your default user; use agent_id for your own working notes and \
run_id for one task. list_memories pages with next_cursor; do not page through everything \
unless asked."""


def add_prompts(server: MCPServer[Any]) -> None:
    """Register ``memory_guide`` on ``server``."""

    @server.prompt(
        name="memory_guide",
        title="How to use long-term memory",
        description="Tells an agent when to search, add, update and delete memories.",
    )
    def memory_guide() -> str:
        return MEMORY_GUIDE
