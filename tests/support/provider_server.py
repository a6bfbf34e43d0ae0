"""Local HTTP servers on 127.0.0.1 speaking an LLM provider's wire format, for the real SDKs.

Nothing inside an SDK is patched: the backends talk to these over a real socket.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Handler = Callable[[dict[str, Any]], tuple[int, dict[str, str], Any]]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeServer:
    """Scripted replies, one per request; the last one repeats. Requests are recorded."""

    replies: list[tuple[int, dict[str, str], Any] | Handler]
    requests: list[Recorded] = field(default_factory=list)
    delay: float = 0.0

    def start(self) -> str:
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(
                    Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                index = min(len(outer.requests), len(outer.replies)) - 1
                reply = outer.replies[index]
                status, headers, payload = reply(body) if callable(reply) else reply
                if outer.delay:
                    time.sleep(outer.delay)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[FakeServer, str]]]:
    servers: list[FakeServer] = []

    def start(*replies: Any, delay: float = 0.0) -> tuple[FakeServer, str]:
        server = FakeServer(list(replies), delay=delay)
        servers.append(server)
        return server, server.start()

    yield start
    for s in servers:
        s.stop()


# --------------------------------------------------------------------------- reply bodies


def message(text: str, in_tokens: int = 11, out_tokens: int = 7, stop: str = "end_turn") -> dict:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens},
    }


def completion(content: Any, usage: dict | None = None) -> dict:
    data: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "llama3.1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }
    if usage is not None:
        data["usage"] = usage
    return data


def no_sleep(_: float) -> None:
    pass
