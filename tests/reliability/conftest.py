"""Fixtures of the reliability suite."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class OnePageRecall(ThreadingHTTPServer):
    """A stand-in for Recall that answers every GET with one page holding ``results``.

    For payloads the emulator never produces (nulls, odd provider shapes): the app still reads
    them through its real client, over HTTP.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PageHandler)
        self.results: list = []

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _PageHandler(BaseHTTPRequestHandler):
    server: OnePageRecall

    def do_GET(self) -> None:
        body = json.dumps({"next": None, "previous": None, "results": self.server.results})
        encoded = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def one_page_recall() -> Iterator[OnePageRecall]:
    server = OnePageRecall()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
