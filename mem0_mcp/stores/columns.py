"""The memory table's columns, shared by the table and its in-process copy."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

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


# The texts of the messages beside a row in its add, as the row's vector was made from them.
NEIGHBOURS_FIELD = pa.field("neighbours", pa.list_(pa.string()), nullable=True)


def memory_schema(dimension: int) -> pa.Schema:
    text = pa.string()
    fields = [
        pa.field(c, text, nullable=c not in ("id", "memory", "hash", "search_text")) for c in ROW_COLUMNS
    ]
    fields[ROW_COLUMNS.index("metadata")] = pa.field("metadata", pa.json_(pa.utf8()), nullable=True)
    fields[ROW_COLUMNS.index("neighbours")] = NEIGHBOURS_FIELD
    fields.append(pa.field("vector", pa.list_(pa.float32(), dimension), nullable=False))
    return pa.schema(fields)


def rows_to_arrow(rows: Sequence[Mapping[str, Any]], vectors: np.ndarray) -> pa.Table:
    # Our own schema, not the table's (which reports the JSON column in its storage type).
    dimension = int(vectors.shape[1])
    schema = memory_schema(dimension)
    data = {c: [r.get(c) for r in rows] for c in ROW_COLUMNS}
    data["metadata"] = [json.dumps(r.get("metadata") or {}) for r in rows]
    arrays = [pa.array(data[c], type=schema.field(c).type) for c in ROW_COLUMNS]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), type=pa.float32())
    arrays.append(pa.FixedSizeListArray.from_arrays(flat, dimension))
    return pa.Table.from_arrays(arrays, schema=schema)
