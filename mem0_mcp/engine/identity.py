"""Which embedding model a data dir was built with, and the check that keeps another one out.

Vectors of different models cannot be mixed in one table: the first embedding records the
model's name and width (``store.json``), and every later start and embedding is checked
against them.
"""

from __future__ import annotations

from collections.abc import Callable

from mem0_mcp.config import Settings
from mem0_mcp.engine.store_meta import read_meta, write_meta
from mem0_mcp.errors import EmbedderMismatchError


class EmbedderIdentity:
    """The recorded identity of the embedder of the store ``settings`` name (its data dir, or
    its object store). ``table_dimension`` reads the width of
    the vectors already stored (None: no table); ``writable`` says whether the identity may be
    recorded (a read-only data dir only checks). Both are asked on the first embedding, so the
    name can be checked before the stores open."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        table_dimension: Callable[[], int | None],
        *,
        writable: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.name = name
        self._table_dimension = table_dimension
        self._writable = writable
        self._dimension_checked = False

    def mismatch(self, what: str, stored: object, configured: object) -> EmbedderMismatchError:
        """The error for a data dir built with another model, naming the setting and the ways out."""
        return EmbedderMismatchError(
            f"embedder_model: this store ({self.settings.store_shown}) was built with {what} {stored!r}, "
            f"but the configured embedder has {configured!r}. Vectors of different models cannot be "
            "mixed: set MEM0_MCP_EMBEDDER_MODEL back, point MEM0_MCP_DATA_DIR elsewhere, or keep the "
            "new model and re-embed every memory with it: run `mem0-mcp reindex` with the same "
            "settings, then restart."
        )

    def check_name(self) -> None:
        """Raises ``EmbedderMismatchError`` when the data dir records another model's name."""
        stored = read_meta(self.settings).get("embedder_model")
        if stored is not None and stored != self.name:
            raise self.mismatch("embedder_model", stored, self.name)

    def check_dimension(self, dimension: int) -> None:
        """On the first embedding: the width must be the recorded (or stored) one; a new data dir
        records name and width. Raises ``EmbedderMismatchError``."""
        if self._dimension_checked:
            return
        meta = read_meta(self.settings)
        stored = meta.get("dimension") or self._table_dimension()
        if stored is not None and int(stored) != dimension:
            raise self.mismatch("vector dimension", int(stored), dimension)
        if not meta and self._writable():
            write_meta(self.settings, {"embedder_model": self.name, "dimension": dimension})
        self._dimension_checked = True

    def forget(self) -> None:
        """The data dir was emptied: the next embedding records the identity again."""
        write_meta(self.settings, None)
        self._dimension_checked = False
