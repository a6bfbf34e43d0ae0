"""The memory table's columns, shared by the table and its in-process copy."""

SCOPE_COLUMNS = ("user_id", "agent_id", "run_id")
# Everything but the vector: what reads return.
ROW_COLUMNS = (
    "id",
    "memory",
    "hash",
    "search_text",
    "context",
    "neighbours",
    "user_id",
    "agent_id",
    "run_id",
    "actor_id",
    "role",
    "name",
    "memory_type",
    "metadata",
    "created_at",
    "updated_at",
    "event_at",
    "superseded_at",
    "superseded_by",
)
# What a search result needs: every column but the long index texts, which stay on disk.
RESULT_COLUMNS = tuple(c for c in ROW_COLUMNS if c not in ("search_text", "context", "neighbours"))
