"""An embedder that loads in a background thread, so startup never waits for the model.

Loading a model costs seconds (torch alone imports in ~4 s), so the model is loaded once, in a
background thread, and only the first call that needs vectors waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mem0_mcp.embedding.base import Embedder, declared_dimension, resolve_model_path
from mem0_mcp.embedding.factory import build_embedder
from mem0_mcp.errors import ConfigError

if TYPE_CHECKING:
    from mem0_mcp.config import Settings

logger = logging.getLogger(__name__)


class BackgroundEmbedder:
    """Starts loading an embedder at once in a thread; ``embed`` waits until it is there.

    ``name`` and (for sentence-transformers folders) ``dimension`` are known before the load,
    so stores can be opened and checked while the model is still loading.
    """

    def __init__(
        self,
        factory: Callable[[], Embedder],
        *,
        name: str,
        dimension: int | None = None,
        start: bool = True,
    ) -> None:
        """Wrap ``factory`` (called once, in the thread); ``start`` False defers the load."""
        self._factory = factory
        self._name = name
        self._declared_dimension = dimension
        self._loaded: Embedder | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self.load_seconds: float | None = None
        if start:
            self.start()

    @classmethod
    def from_settings(cls, settings: Settings, *, start: bool = True) -> BackgroundEmbedder:
        """The configured backend (see :func:`build_embedder`), its dimension read from the folder."""
        dim = declared_dimension(resolve_model_path(settings.embedder_model))
        return cls(lambda: build_embedder(settings), name=settings.embedder_model, dimension=dim, start=start)

    def start(self) -> None:
        """Begin loading in a daemon thread (once; later calls do nothing)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="embedder-load", daemon=True).start()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            self._loaded = self._factory()
            self.load_seconds = time.perf_counter() - t0
            logger.info(
                "embedding model %s loaded in %.1fs (%s)",
                self._name,
                self.load_seconds,
                type(self._loaded).__name__,
            )
        except BaseException as exc:
            self._error = exc
            logger.error("embedding model %s failed to load: %s", self._name, exc)
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        """True once the model loaded without error."""
        return self._done.is_set() and self._error is None

    @property
    def backend(self) -> str:
        """Class name of the loaded embedder, or "loading"."""
        return type(self._loaded).__name__ if self._loaded is not None else "loading"

    def wait(self, timeout: float | None = None) -> Embedder:
        """The loaded embedder, starting the load if needed and waiting up to ``timeout`` seconds.

        Raises TimeoutError while it is still loading, :class:`ConfigError` when the load failed.
        """
        self.start()
        if not self._done.wait(timeout):
            raise TimeoutError(f"embedding model {self._name} is still loading")
        if self._error is not None:
            raise ConfigError(f"embedder_model: cannot load {self._name!r}: {self._error}") from self._error
        assert self._loaded is not None
        return self._loaded

    @property
    def name(self) -> str:
        """The model setting (known before the load)."""
        return self._name

    @property
    def dimension(self) -> int:
        """The declared dimension before the load, the model's after (waits if none is declared)."""
        if self._loaded is None and self._declared_dimension is not None:
            return self._declared_dimension
        return self.wait().dimension

    @property
    def declared_dimension(self) -> int | None:
        """The dimension known without waiting, or None."""
        return self._loaded.dimension if self._loaded is not None else self._declared_dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` once the model is loaded (waits for it; raises as :meth:`wait`)."""
        return self.wait().embed(texts)
