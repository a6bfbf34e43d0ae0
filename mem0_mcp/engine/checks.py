"""The three stores of a data dir checked against each other: the memory table (LanceDB), the
history and its write-behind journal (SQLite). Run when a data dir is opened (one log line per
finding) and by ``mem0-mcp doctor`` (which prints them and repairs what it can, engine/repair.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from mem0_mcp.config import Settings
from mem0_mcp.engine.store_meta import read_meta
from mem0_mcp.errors import StoreError
from mem0_mcp.stores.history import QUARANTINE
from mem0_mcp.stores.history_api import History
from mem0_mcp.stores.lance_recovery import missing_data_files
from mem0_mcp.stores.vectors import VectorStore

logger = logging.getLogger(__name__)

Store = Literal["data dir", "memory table", "history", "journal"]
# Journal rows named one by one at most; the rest in one line.
MAX_ROWS_NAMED = 10
QUARANTINE_FILE = "quarantine"
REPAIR = "`mem0-mcp doctor --repair`"


@dataclass(frozen=True)
class Finding:
    """One problem: which store, what is wrong, and what fixes it (``repairable``: the doctor can)."""

    store: Store
    problem: str
    fix: str
    repairable: bool = False

    def line(self) -> str:
        return f"{self.store}: {self.problem}; fix: {self.fix}"


def check_stores(
    settings: Settings, vectors: VectorStore, history: History, read_only: str | None
) -> list[Finding]:
    """Every inconsistency between the stores, most serious first; [] when they agree."""
    found: list[Finding] = []
    if read_only is not None and vectors.fallback is None:
        found.append(Finding("data dir", read_only, "make it writable and restart"))
    found += _table_findings(vectors)
    found += _history_findings(settings, vectors, history)
    found += _journal_findings(settings, vectors, history, read_only is not None)
    return found


def log_findings(findings: list[Finding]) -> None:
    for finding in findings:
        logger.warning("%s", finding.line())


def journal_dimension(settings: Settings, vectors: VectorStore) -> int | None:
    """The dimension journal rows must have: the table's, else the one store.json records."""
    if vectors.dimension is not None:
        return vectors.dimension
    try:
        recorded = read_meta(settings).get("dimension")
    except StoreError:
        return None
    return recorded if isinstance(recorded, int) and not isinstance(recorded, bool) else None


def _table_findings(vectors: VectorStore) -> list[Finding]:
    fb = vectors.fallback
    found = []
    if fb is not None:
        newest = fb.serving + len(fb.unreadable)
        found.append(
            Finding(
                "memory table",
                f"version {newest} of {fb.dataset} is unreadable ({fb.reason}); version {fb.serving} "
                "is served instead, read-only: writes are refused",
                f"{REPAIR} sets the unreadable manifest aside and makes version {fb.serving} the newest "
                "(changes made after it are lost unless the data dir is restored from a backup)",
                repairable=True,
            )
        )
    tbl = vectors.table
    if tbl is None:
        return found
    try:
        missing = missing_data_files(tbl)
    except Exception as exc:
        missing = []
        found.append(Finding("memory table", f"its files cannot be listed: {exc}", "restore from a backup"))
    found += [
        Finding(
            "memory table",
            f"the data file {path} is missing: the memories in it cannot be read",
            "restore the data dir from a backup (nothing else holds those rows)",
        )
        for path in missing
    ]
    return found


def _history_findings(settings: Settings, vectors: VectorStore, history: History) -> list[Finding]:
    path = settings.history_path
    fix = (
        f"{REPAIR} rebuilds one ADD event per memory from the memory as it is now, marked "
        "source=rebuilt (earlier changes stay unknown)"
    )
    try:
        if history.is_empty():
            count = vectors.count()
            if not count:
                return []
            problem = (
                f"{path} holds no history but the memory table holds {count} memories: the history "
                "file was deleted or emptied; the memories are intact, their earlier changes are not "
                "recorded any more, new changes are"
            )
            return [Finding("history", problem, fix, repairable=True)]
        rows = vectors.query("", columns=("id", "memory"))
    except StoreError as exc:
        return [Finding("memory table", str(exc), "restore the data dir from a backup")]
    found: list[Finding] = []
    texts = history.latest_texts()  # one pass over the history serves both checks
    orphans = sorted(r["id"] for r in rows if r["id"] not in texts)
    if orphans:
        shown = ", ".join(orphans[:3]) + (", ..." if len(orphans) > 3 else "")
        problem = f"{len(orphans)} memories of the table have no history in {path} ({shown})"
        found.append(Finding("history", problem, fix, repairable=True))
    journaled = set(history.pending_ids())  # their table row is still the one before the change
    unrecorded = [r for r in unrecorded_changes(rows, texts) if r["id"] not in journaled]
    if unrecorded:
        shown = ", ".join(r["id"] for r in unrecorded[:3]) + (", ..." if len(unrecorded) > 3 else "")
        problem = (
            f"{len(unrecorded)} memories hold a text their history does not end with ({shown}): a "
            "process stopped between writing the memory and its history event"
        )
        fix = f"{REPAIR} records the change as an UPDATE marked source=rebuilt"
        found.append(Finding("history", problem, fix, repairable=True))
    return found


def unrecorded_changes(rows: list[dict[str, Any]], texts: dict[str, str | None]) -> list[dict[str, Any]]:
    """Of the table's ``rows`` (id, memory), those whose text is not the one their newest history
    event left them with (``texts``, HistoryStore.latest_texts): a change written to the table
    whose event was never written (the two stores commit one after the other). The check and the
    repair both decide by this."""
    return [r for r in rows if texts.get(r["id"]) not in (None, r["memory"])]


def _journal_findings(
    settings: Settings, vectors: VectorStore, history: History, read_only: bool
) -> list[Finding]:
    path = settings.history_path
    found = []
    bad = history.unreplayable(journal_dimension(settings, vectors))
    for problem in bad[:MAX_ROWS_NAMED]:
        found.append(
            Finding(
                "journal",
                f"row {problem.seq} (memory {problem.memory_id}) of the journal in {path} cannot be "
                f"moved into the memory table: {problem.reason}",
                f"the next write sets it aside in table {QUARANTINE} of {path}; {REPAIR} re-embeds it "
                f"from its text, or saves it to {settings.data_dir / QUARANTINE_FILE} when its text "
                "is unreadable",
                repairable=True,
            )
        )
    if len(bad) > MAX_ROWS_NAMED:
        found.append(
            Finding(
                "journal",
                f"{len(bad) - MAX_ROWS_NAMED} more rows of the journal in {path} cannot be moved",
                REPAIR,
                repairable=True,
            )
        )
    quarantined = history.quarantined()
    if quarantined:
        found.append(
            Finding(
                "journal",
                f"{len(quarantined)} memories that could not be moved into the memory table are set "
                f"aside in table {QUARANTINE} of {path} (searches do not find them)",
                f"{REPAIR} re-embeds and adds those whose text is readable; the rest are saved to "
                f"{settings.data_dir / QUARANTINE_FILE}",
                repairable=True,
            )
        )
    waiting = history.pending_count() - len(bad) if read_only else 0
    if waiting > 0:
        found.append(
            Finding(
                "journal",
                f"{waiting} memories saved in the journal of {path} are not in the memory table yet "
                "and cannot be moved there while the data dir is read-only (searches do not find them)",
                "make the data dir writable and restart",
            )
        )
    return found
