"""A store that explains itself (#16): the stores are checked against each other when a data dir
opens (one warning line per problem), `mem0-mcp doctor` prints the same and repairs what it can,
a damaged newest Lance version falls back to the previous one, a missing data file is named."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mcp.client import Client

from mem0_mcp.cli.doctor import doctor
from mem0_mcp.cli.main import main
from mem0_mcp.config import Settings
from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import StoreError
from mem0_mcp.stores.lance_recovery import manifest_versions
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.server import fake_server, structured

CLEAN = "all stores consistent"


def run_doctor(settings: Settings, *, repair: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    status = doctor(settings, repair=repair, embedder=FakeEmbedder, out=out)
    return status, out.getvalue()


def open_memory(settings: Settings) -> Memory:
    return Memory(settings, embedder=FakeEmbedder())


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def store_with(settings: Settings, *texts: str) -> list[str]:
    """Each text in its own add and table version; their ids."""
    mem = open_memory(settings)
    ids = []
    for text in texts:
        ids.append(mem.add(text, user_id="u").results[0].id)
        mem.flush()
    mem.close()
    return ids


def test_a_sound_store_is_consistent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path / "data")
    store_with(settings, "Keeps bees on the roof", "Plays the cello")
    with caplog.at_level("WARNING"):
        open_memory(settings).close()
    assert warnings_of(caplog) == []
    assert run_doctor(settings) == (0, CLEAN + "\n")


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """The command configures logging onto the captured stderr: put the handlers back after."""
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


@pytest.mark.usefixtures("keep_logging")
def test_the_doctor_command_exits_non_zero_while_problems_remain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path / "data")
    store_with(settings, "Keeps bees on the roof")
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(settings.data_dir))
    assert main(["doctor"]) == 0
    assert CLEAN in capsys.readouterr().out
    settings.history_path.write_bytes(b"")
    for extra in settings.data_dir.glob("history.sqlite3-*"):
        extra.unlink()
    assert main(["doctor"]) == 1
    assert "holds no history" in capsys.readouterr().out
    assert main(["doctor", "--repair"]) == 0
    assert main(["doctor"]) == 0


async def test_lost_history_is_said_at_start_and_rebuilt_marked_as_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "data")
    bees, cello = store_with(settings, "Keeps bees on the roof", "Plays the cello")
    # The history of one memory gone (a history file restored from an older backup, say).
    with sqlite3.connect(settings.history_path) as db:
        db.execute("DELETE FROM history WHERE memory_id = ?", (cello,))
    with caplog.at_level("WARNING"):
        open_memory(settings).close()
    [line] = warnings_of(caplog)
    assert line.startswith("history: 1 memories of the table have no history") and cello in line
    assert "doctor --repair" in line
    status, report = run_doctor(settings)
    assert status == 1 and report.strip() == line
    status, report = run_doctor(settings, repair=True)
    assert status == 0, report
    assert "an ADD event was rebuilt" in report and report.rstrip().endswith(CLEAN)
    mem = open_memory(settings)
    try:
        [entry] = mem.history(cello)
        assert (entry.event, entry.source, entry.new_memory) == ("ADD", "rebuilt", "Plays the cello")
        assert [h.source for h in mem.history(bees)] == ["api"]
    finally:
        mem.close()
    async with Client(fake_server(make_settings(settings.data_dir, user_id="u"))) as client:
        shown = structured(await client.call_tool("memory_history", {"memory_id": cello}))
        assert "rebuilt" in json.dumps(shown)


def _journal(settings: Settings, memory_id: str, row: str, vector: bytes, text: str) -> None:
    """A journal row as a crashed or damaged process may leave it, with its ADD event."""
    with sqlite3.connect(settings.history_path) as db:
        db.execute(
            "INSERT INTO pending_rows (memory_id, hash, row, vector, created_at) VALUES (?, ?, ?, ?, ?)",
            (memory_id, "h-" + memory_id, row, vector, "2026-01-01T00:00:00Z"),
        )
        db.execute(
            "INSERT INTO history (memory_id, new_memory, event, created_at, user_id, source) "
            "VALUES (?, ?, 'ADD', '2026-01-01T00:00:00Z', 'u', 'api')",
            (memory_id, text),
        )


def test_unreplayable_journal_rows_are_set_aside_then_put_back_or_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "data")
    [kept] = store_with(settings, "Keeps bees on the roof")
    good = {
        "id": "wrong-dim",
        "memory": "Grows tomatoes on the balcony",
        "hash": "h-wrong-dim",
        "search_text": "Grows tomatoes on the balcony",
        "user_id": "u",
        "metadata": {},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    _journal(settings, "wrong-dim", json.dumps(good), np.ones(8, np.float32).tobytes(), good["memory"])
    _journal(
        settings, "bad-json", '{"id": "bad-json", "memo', np.ones(64, np.float32).tobytes(), "Speaks Welsh"
    )
    with caplog.at_level("WARNING"):
        mem = open_memory(settings)
    try:
        lines = warnings_of(caplog)
        assert any(x.startswith("journal: row") and "wrong-dim" in x and "8 dimensions" in x for x in lines)
        assert any(x.startswith("journal: row") and "bad-json" in x and "not valid JSON" in x for x in lines)
        # One bad row used to fail every read: they are set aside, the rest of the store serves.
        assert [h.id for h in mem.search("bees", user_id="u").results] == [kept]
    finally:
        mem.close()
    status, report = run_doctor(settings)
    assert status == 1 and "set aside in table quarantined_rows" in report
    status, report = run_doctor(settings, repair=True)
    assert status == 0, report
    saved = settings.data_dir / "quarantine" / "journal-rows.jsonl"
    assert str(saved) in report
    [record] = [json.loads(line) for line in saved.read_text().splitlines()]
    assert record["memory_id"] == "bad-json" and record["text_in_history"] == "Speaks Welsh"
    mem = open_memory(settings)
    try:
        assert mem.get("wrong-dim").memory == "Grows tomatoes on the balcony"
        assert "wrong-dim" in [h.id for h in mem.search("tomatoes balcony", user_id="u").results]
    finally:
        mem.close()


def test_an_unreadable_newest_version_falls_back_to_the_previous_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "data")
    ids = store_with(settings, "Keeps bees on the roof", "Plays the cello", "Speaks Welsh")
    dataset = settings.lance_dir / "memories.lance"
    (newest, manifest), (previous, _) = manifest_versions(dataset)[:2]
    manifest.write_bytes(b"")
    with caplog.at_level("WARNING"):
        mem = open_memory(settings)
    try:
        said = " ".join(warnings_of(caplog))
        assert f"version {newest} of {dataset} is unreadable" in said
        assert f"serving version {previous}" in said or f"version {previous} is served" in said
        # The previous version is readable: searches and reads work on what it holds.
        assert mem.get(ids[0]).memory == "Keeps bees on the roof"
        assert ids[0] in [h.id for h in mem.search("bees roof", user_id="u").results]
        with pytest.raises(StoreError, match="doctor --repair"):
            mem.add("A new fact", user_id="u")
    finally:
        mem.close()
    status, report = run_doctor(settings)
    assert status == 1 and "unreadable" in report
    status, report = run_doctor(settings, repair=True)
    assert status == 0, report
    assert f"version {previous} of {dataset} is the newest again" in report
    assert any((settings.data_dir / "quarantine").rglob(manifest.name))  # kept, not deleted
    mem = open_memory(settings)
    try:
        assert mem.add("Written after the repair", user_id="u").results[0].event == "ADD"
        assert "Written after the repair" in [m.memory for m in mem.get_all(user_id="u").results]
    finally:
        mem.close()


def test_a_missing_data_file_is_named_with_the_fix(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    store_with(settings, "Keeps bees on the roof", "Plays the cello")
    lost = sorted((settings.lance_dir / "memories.lance" / "data").iterdir())[0]
    lost.unlink()
    mem = open_memory(settings)
    try:
        for read in (lambda: mem.get_all(user_id="u"), lambda: mem.search("bees", user_id="u")):
            with pytest.raises(StoreError) as err:
                read()
            message = str(err.value)
            assert str(lost) in message and "backup" in message and "doctor" in message, message
            assert ".rs:" not in message and "LanceError" not in message, message
    finally:
        mem.close()
    status, report = run_doctor(settings)
    assert status == 1 and f"the data file {lost} is missing" in report


def test_one_repair_mends_a_damaged_table_and_a_lost_history_together(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    store_with(settings, "Keeps bees on the roof", "Plays the cello", "Speaks Welsh")
    for path in settings.data_dir.glob("history.sqlite3*"):
        path.unlink()
    manifest_versions(settings.lance_dir / "memories.lance")[0][1].write_bytes(b"")
    status, report = run_doctor(settings)
    assert status == 1 and "unreadable" in report and "holds no history" in report, report
    status, report = run_doctor(settings, repair=True)
    assert status == 0 and "is the newest again" in report and "rebuilt" in report, report


def test_a_change_whose_history_event_was_never_written_is_found_and_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What a kill between an update's table write and its history event leaves (the two stores
    # commit one after the other; tests/test_crash.py kills processes at random moments).
    settings = make_settings(tmp_path / "data")
    [kept, changed] = store_with(settings, "Keeps bees on the roof", "Plays the cello")
    mem = open_memory(settings)
    mem.storage.vectors.update(changed, {"memory": "Plays the viola", "updated_at": "2026-12-03T10:00:00Z"})
    mem.close()
    with caplog.at_level("WARNING"):
        open_memory(settings).close()
    assert any("history does not end with" in w and changed in w for w in warnings_of(caplog))
    status, report = run_doctor(settings)
    assert status == 1 and changed in report and kept not in report

    status, report = run_doctor(settings, repair=True)
    assert status == 0, report
    mem = open_memory(settings)
    last = mem.history(changed)[-1]
    assert (last.event, last.old_memory, last.new_memory, last.source) == (
        "UPDATE",
        "Plays the cello",
        "Plays the viola",
        "rebuilt",
    )
    assert [e.event for e in mem.history(kept)] == ["ADD"]
    mem.close()
    assert run_doctor(settings) == (0, CLEAN + "\n")


def test_a_set_aside_change_of_a_stored_memory_keeps_its_text(tmp_path: Path) -> None:
    """A journaled change (an update) set aside for a bad vector, of a memory the table holds: the
    repair does not drop it as an add of an id already there; its text is saved for a person."""
    settings = make_settings(tmp_path / "data")
    [kept] = store_with(settings, "Keeps bees on the roof")
    changed = {
        "id": kept,
        "memory": "Keeps bees on the roof and in the garden",
        "hash": "h-changed",
        "search_text": "Keeps bees on the roof and in the garden",
        "user_id": "u",
        "metadata": {},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T00:00:00Z",
    }
    _journal(settings, kept, json.dumps(changed), np.ones(8, np.float32).tobytes(), changed["memory"])
    open_memory(settings).close()  # the start check sets the row aside
    _, report = run_doctor(settings, repair=True)
    saved = settings.data_dir / "quarantine" / "journal-rows.jsonl"
    assert str(saved) in report, report
    records = [json.loads(line) for line in saved.read_text().splitlines()]
    assert any(r["memory_id"] == kept and "in the garden" in (r["row"] or "") for r in records)
