"""A store on object storage (``store_uri``: s3://, gs://, az://): how LanceDB reaches it.

The one owner of two things: the storage options LanceDB gets, built from the provider's usual
environment variables (never logged; ``Settings.store_shown`` is the URI as it may be shown); and
retrying a commit that lost a race with another node's.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from mem0_mcp.config import STORE_SCHEMES, Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Provider variable -> LanceDB (object_store) option. The first variable set wins per option.
_ENV_OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "s3": (
        ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
        ("AWS_SESSION_TOKEN", "aws_session_token"),
        ("AWS_REGION", "aws_region"),
        ("AWS_DEFAULT_REGION", "aws_region"),
        ("AWS_ENDPOINT_URL_S3", "aws_endpoint"),
        ("AWS_ENDPOINT_URL", "aws_endpoint"),
        ("AWS_ENDPOINT", "aws_endpoint"),
        ("AWS_ALLOW_HTTP", "allow_http"),
        ("AWS_S3_ALLOW_UNSAFE_RENAME", "aws_s3_allow_unsafe_rename"),
    ),
    "gs": (
        ("GOOGLE_SERVICE_ACCOUNT", "google_service_account"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "google_application_credentials"),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", "google_service_account_key"),
    ),
    "az": (
        ("AZURE_STORAGE_ACCOUNT_NAME", "azure_storage_account_name"),
        ("AZURE_STORAGE_ACCOUNT_KEY", "azure_storage_account_key"),
        ("AZURE_STORAGE_SAS_TOKEN", "azure_storage_sas_token"),
        ("AZURE_STORAGE_CLIENT_ID", "azure_client_id"),
        ("AZURE_STORAGE_CLIENT_SECRET", "azure_client_secret"),
        ("AZURE_STORAGE_TENANT_ID", "azure_tenant_id"),
        ("AZURE_STORAGE_USE_EMULATOR", "azure_storage_use_emulator"),
        ("AZURE_ALLOW_HTTP", "allow_http"),
    ),
}

# Commit-conflict retries: LanceDB retries internally first; these cover what it gives up on.
CONFLICT_ATTEMPTS = 6
CONFLICT_BASE_SECONDS = 0.05


def storage_options(uri: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """LanceDB's ``storage_options`` for ``uri``, from the provider's environment variables.

    Holds credentials: pass it to LanceDB only, never log or return it to a caller."""
    source = os.environ if env is None else env
    options: dict[str, str] = {}
    scheme = urlsplit(uri).scheme
    if scheme not in STORE_SCHEMES:
        raise ValueError(f"not an object-store URI: {scheme}://")
    for variable, option in _ENV_OPTIONS[scheme]:
        value = source.get(variable)
        if value and option not in options:
            options[option] = value
    return options


def is_conflict(exc: BaseException) -> bool:
    """Whether a LanceDB write failed because another writer committed first (retryable)."""
    from lance.commit import CommitConflictError

    if isinstance(exc, CommitConflictError):
        return bool(getattr(exc, "retryable", True))
    text = str(exc).lower()
    if "incompatible transaction" in text:
        # LanceDB cannot rebase this commit onto a concurrent one (an append beside another
        # node's index creation): nothing was written, so the whole write may run again.
        return True
    return "conflict" in text and ("commit" in text or "retryable" in text or "concurrent" in text)


def retry_conflicts(write: Callable[[], T], *, what: str, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run ``write``; when it loses a commit race with another writer, run it again (up to
    ``attempts`` times, with jittered exponential backoff). Other errors, and the last conflict,
    are raised as they are. ``what`` names the write in the log line."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except Exception as exc:
            if attempt == attempts or not is_conflict(exc):
                raise
            delay = CONFLICT_BASE_SECONDS * (2 ** (attempt - 1)) * (0.5 + random.random())
            logger.info("%s: commit conflict with another writer, retrying in %.2fs", what, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def is_race(exc: BaseException) -> bool:
    """A conflict, or what LanceDB raises when several nodes create the same table at once: a
    schema read while another node created it, a panic. Only for creating what is then shared."""
    text = str(exc).lower()
    return is_conflict(exc) or any(word in text for word in ("does not match existing table", "panicked"))


def create_shared(create: Callable[[], T], existing: Callable[[], T | None], *, what: str) -> T:
    """Create a table (or index) that other nodes may be creating at the same moment: when
    ``create`` fails with a race and ``existing`` then returns what another node made, that;
    otherwise ``create`` again, with backoff, up to ``CONFLICT_ATTEMPTS`` times. Other errors and
    the last race are raised as they are."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return create()
        except Exception as exc:
            if not is_race(exc):
                raise
            try:
                found = existing()
            except Exception:  # not there yet either
                found = None
            if found is not None:
                return found
            if attempt == CONFLICT_ATTEMPTS:
                raise
            delay = CONFLICT_BASE_SECONDS * (2 ** (attempt - 1)) * (0.5 + random.random())
            logger.info("%s: created by another node at the same moment, retrying in %.2fs", what, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def create_table_shared(db: Any, name: str, schema: Any, *, what: str) -> Any:
    """``db.create_table(name, schema=schema, exist_ok=True)`` where other nodes may be creating
    the same table at the same moment (see ``create_shared``)."""
    return create_shared(
        lambda: db.create_table(name, schema=schema, exist_ok=True), lambda: db.open_table(name), what=what
    )


@dataclass(frozen=True)
class RemoteStore:
    """Where a store on object storage is: its URI, LanceDB's options (with credentials: left
    out of the repr), the staleness bound of reads, and the URI as it may be shown."""

    uri: str
    options: Mapping[str, str] = field(repr=False)
    refresh_seconds: float
    shown: str

    def connect(self) -> Any:
        """A LanceDB connection whose reads see other nodes' commits within the bound."""
        import lancedb

        return lancedb.connect(
            self.uri,
            storage_options=dict(self.options),
            read_consistency_interval=timedelta(seconds=self.refresh_seconds),
        )


def remote_store(settings: Settings) -> RemoteStore | None:
    """Where ``settings`` put the shared state on object storage; None for the data dir."""
    if settings.store_uri is None:
        return None
    return RemoteStore(
        uri=settings.store_uri,
        options=storage_options(settings.store_uri),
        refresh_seconds=settings.store_refresh_seconds,
        shown=settings.store_shown,
    )
