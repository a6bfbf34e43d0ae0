"""An S3 emulator for tests: moto's server on 127.0.0.1, one bucket, the env that reaches it.

Also pytest fixtures (a plugin of tests/conftest.py): ``bucket`` (one emulator per test module),
``s3_env`` (its provider variables set in the environment, as a deployment sets them) and
``s3_uri`` (the same, and a store URI of its own for the test).

``s3_bucket()`` starts ``moto.server.ThreadedMotoServer`` on a free port, creates a bucket and
yields an ``S3Bucket``: ``uri`` (``s3://<bucket>/<prefix>``, a fresh prefix per call) and ``env``
(the provider variables LanceDB and ``stores.object_store.storage_options`` read). Tests set the
env with pytest's ``monkeypatch`` (the ``s3_env`` fixture of tests/test_object_store.py does).
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

ACCESS_KEY = "testing"
SECRET_KEY = "testing-secret-key"


@dataclass(frozen=True)
class S3Bucket:
    endpoint: str
    bucket: str
    env: dict[str, str]

    def uri(self, prefix: str | None = None) -> str:
        """A store URI under the bucket (a new prefix when none is given: a store of its own)."""
        return f"s3://{self.bucket}/{prefix or uuid.uuid4().hex[:12]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_bucket(endpoint: str, bucket: str) -> S3Bucket:
    """``bucket`` created on the emulator at ``endpoint``, with the env that reaches it."""
    import boto3

    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=bucket)
    return S3Bucket(endpoint=endpoint, bucket=bucket, env=env)


@contextmanager
def s3_bucket(bucket: str = "mem0-test") -> Iterator[S3Bucket]:
    """A moto S3 server with ``bucket`` created, stopped on exit."""
    from moto.server import ThreadedMotoServer

    # The emulator logs one line per request otherwise.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield open_bucket(f"http://127.0.0.1:{port}", bucket)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bucket() -> Iterator[S3Bucket]:
    with s3_bucket() as b:
        yield b


@pytest.fixture
def s3_env(bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    for name, value in bucket.env.items():
        monkeypatch.setenv(name, value)
    return bucket


@pytest.fixture
def s3_uri(s3_env: S3Bucket) -> str:
    return s3_env.uri()
