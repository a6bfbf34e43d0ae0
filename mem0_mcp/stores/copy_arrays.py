"""The arrays behind the in-process copy (stores/dense_cache.py): how table rows are read into
it, how its arrays grow, and what tells a changed fragment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from mem0_mcp.stores.columns import RESULT_COLUMNS

# What the copy reads from the table: the result columns, the indexed text and the vector.
READ = [*RESULT_COLUMNS, "search_text", "vector"]


def prepared_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the copy holds it: metadata as the JSON text the table returns."""
    return {**row, "metadata": json.dumps(row.get("metadata") or {}, separators=(",", ":"))}


def capacity(rows: int) -> int:
    # A quarter of headroom: growing copies the matrix, but at 1M memories each spare row costs
    # 1.5 KB (doubling, as before, left up to 1.5 GB unused).
    return max(1024, rows + rows // 4)


def grown(array: np.ndarray, cap: int) -> np.ndarray:
    out = np.zeros(cap, dtype=array.dtype)
    out[: len(array)] = array
    return out


def fragment_signatures(snapshot: Any) -> dict[int, str]:
    """fragment id -> what changes when its rows do (data files, deletion file, row count)."""
    out: dict[int, str] = {}
    for fragment in snapshot.get_fragments():
        meta = fragment.metadata
        out[int(fragment.fragment_id)] = f"{meta.physical_rows}|{meta.deletion_file!r}|{meta.data_files()!r}"
    return out


def rows_of_table(data: pa.Table) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Rows (every read column but the vector) and the vectors of an Arrow table of READ columns."""
    dim = int(data.schema.field("vector").type.list_size)
    flat = data.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False)
    vectors = np.asarray(flat, dtype=np.float32).reshape(len(data), dim)
    names = READ[:-1]
    columns = {c: data.column(c).to_pylist() for c in names}
    return [{c: columns[c][i] for c in names} for i in range(len(data))], vectors
