"""The arrays behind the in-process copy (stores/dense_cache.py): how table rows are read into
it, how its arrays grow, and what tells a changed fragment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from mem0_mcp.stores.columns import RESULT_COLUMNS
from mem0_mcp.stores.text_index import TextIndex

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


class LazyText:
    """The copy's BM25 postings; rows an add stages join them when text is next read or when the
    mover next reports to the copy, whichever comes first (tokenizing and stemming a row cost
    ~0.09 ms of a verbatim add). The caller holds the copy's lock."""

    def __init__(self) -> None:
        self._index = TextIndex()
        self._due: list[tuple[int, str | None]] = []

    def add(self, position: int, text: str | None, *, later: bool = False) -> None:
        if later:
            self._due.append((position, text))
        else:
            self.current().add(position, text)

    def current(self) -> TextIndex:
        """The postings with every row added so far."""
        for position, text in self._due:
            self._index.add(position, text)
        self._due.clear()
        return self._index
