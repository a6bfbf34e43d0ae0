"""A full disk: the failing add says so and stores nothing; what was stored stays readable (#16).

Runs on a small tmpfs the test mounts (root on Linux); skipped with the reason elsewhere.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import StoreError
from tests.support.engine import FakeEmbedder, make_settings


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root on Linux): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> None:
    """Take every free byte of the disk."""
    with (disk / "filler").open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    try:
        with (disk / "filler-tail").open("wb") as out:
            while True:
                out.write(b"\0" * 512)
                out.flush()
    except OSError:
        pass


def test_an_add_on_a_full_disk_says_so_and_loses_nothing(small_disk: Path) -> None:
    settings = make_settings(small_disk / "data")
    mem = Memory(settings, embedder=FakeEmbedder())
    try:
        kept = mem.add("Stored before the disk filled up", user_id="u").results[0]
        mem.flush()
        fill(small_disk)
        with pytest.raises(StoreError) as err:
            mem.add("This one finds no room " * 200, user_id="u")
        message = str(err.value)
        assert "full" in message and "no transaction" not in message, message
        # What was stored is still there and readable while the disk is full.
        assert mem.get(kept.id).memory == "Stored before the disk filled up"
        assert [h.memory for h in mem.get_all(user_id="u").results] == ["Stored before the disk filled up"]
        # Room again: adds work.
        (small_disk / "filler").unlink()
        assert mem.add("Stored after space came back", user_id="u").results[0].event == "ADD"
    finally:
        (small_disk / "filler").unlink(missing_ok=True)
        mem.close()
