"""HTTP plumbing: a threaded server on 127.0.0.1, a small router, requests and responses.

Routes are registered by the Recall API module and by the OAuth provider module; this module knows
nothing about either, so another fake service can plug into the same port.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .errors import ApiError


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str) -> str | None:
        """The last value of a query parameter, as Django's QueryDict.get answers."""
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def flat_query(self) -> dict[str, str]:
        return {name: values[-1] for name, values in self.query.items()}

    def json(self) -> Any:
        """The body parsed as JSON (None when empty); malformed JSON is Recall's 400."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(
                400,
                {
                    "code": "invalid_request_data",
                    "message": f"JSON parse error - {exc}",
                    "errors": {"non_field_errors": [f"JSON parse error - {exc}"]},
                },
            ) from None

    def form(self) -> dict[str, str]:
        """A form-encoded body (OAuth token requests)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in parsed.items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(data).encode(), headers=headers or {})

    @classmethod
    def html(cls, status: int, text: str) -> Response:
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(302, b"", "text/plain", {"Location": location})


Handler = Callable[[Request], Response]


@dataclass
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    authenticated: bool


class Router:
    """Path patterns like ``/api/v2/calendars/{id}/`` mapped to one handler per method."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, path: str, methods: dict[str, Handler], *, authenticated: bool = True) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$"
        self.routes.append(Route(re.compile(regex), methods, authenticated))

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None


class _Handler(BaseHTTPRequestHandler):
    """Parses the request, hands it to the emulator, writes the answer (keep-alive HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; Nagle + delayed ACK would add ~40 ms to each answer.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        response = self.server.dispatch(request)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the emulator keeps its own request log."""


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, dispatch: Callable[[Request], Response]) -> None:
        super().__init__((host, port), _Handler)
        self.dispatch = dispatch


def start_server(
    host: str, port: int, dispatch: Callable[[Request], Response]
) -> tuple[EmulatorHTTPServer, threading.Thread]:
    server = EmulatorHTTPServer(host, port, dispatch)
    # A short poll interval makes stop() (and so every test's teardown) quick.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="recall-emulator", daemon=True
    )
    thread.start()
    return server, thread
