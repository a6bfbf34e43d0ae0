"""Which journal entries of this process the in-process copy holds before they reach the table
(write-behind): reads served from the copy see them without moving the journal, as long as it
holds nothing else. The copy's lock guards an instance; it has none of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class StagedEntries:
    def __init__(self) -> None:
        self._seqs: set[int] = set()
        # id -> the seq of its newest staged entry: the table may still bring an older state of
        # the row (this process's mover applying an earlier entry without the journal lock,
        # another process's append of its add), which must not replace the staged one.
        self._latest: dict[str, int] = {}
        # id -> seq of the entries this process's mover is applying now (see ``moving``).
        self._moving: dict[str, int] = {}

    def stage(self, seqs: Mapping[str, int]) -> None:
        """Entries (id -> seq) now applied to the copy."""
        self._seqs.update(seqs.values())
        self._latest.update(seqs)

    def change(self, memory_id: str, seq: int | None) -> None:
        """An update or delete of ``memory_id`` applied to the copy; ``seq`` None: the delete
        dropped the entry of an add."""
        if seq is not None:
            self._seqs.add(seq)
            self._latest[memory_id] = seq
        else:
            self._latest.pop(memory_id, None)

    def holds(self, seqs: Sequence[int]) -> bool:
        """Whether every one of the journal entries ``seqs`` is staged. Entries staged that are
        gone from ``seqs`` below its newest were moved into the table (seqs grow with each
        commit) and are forgotten."""
        if seqs:
            pending = set(seqs)
            top = max(pending)
            # Set differences in C: the journal can hold thousands while the table is busy.
            gone = {s for s in self._seqs - pending if s <= top}
            if gone:
                # ``_latest`` holds staged seqs only (both are pruned here alike).
                self._seqs -= gone
                self._latest = {i: s for i, s in self._latest.items() if s not in gone}
        return self._seqs.issuperset(seqs)

    def moving(self, seqs: Mapping[str, int]) -> None:
        """This process's mover is about to apply these entries (id -> seq) to the table."""
        self._moving = dict(seqs)

    def forget(self, seqs: Sequence[int]) -> None:
        """The move of these entries is over (see DenseCache.forget)."""
        self._moving = {}
        gone = set(seqs)
        self._latest = {i: s for i, s in self._latest.items() if s not in gone}

    def staged(self, memory_id: str) -> bool:
        """Whether a state of ``memory_id`` is staged: newer than any the table brings."""
        return memory_id in self._latest

    def newer(self, memory_id: str) -> bool:
        """Whether the staged state of ``memory_id`` is newer than the one being moved."""
        moving = self._moving.get(memory_id)
        return moving is not None and self._latest.get(memory_id, -1) > moving
