"""Recall's ``Idempotency-Key``: a repeated POST, PUT or PATCH replays the first answer.

A repeat within an hour (emulated) gets the first request's response instead of acting again; a
repeat while the first request is still being handled gets ``409``. Keys are per workspace (one
emulator) and per method and path, so the same key sent to two endpoints acts on each once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .clock import TimeScale
from .server import Request, Response

HEADER = "idempotency-key"
METHODS = frozenset({"POST", "PUT", "PATCH"})
LIFETIME = 3600.0  # emulated seconds a key's answer is replayed

IN_FLIGHT = Response.json(
    409,
    {
        "code": "idempotency_key_in_use",
        "message": "A request with this Idempotency-Key is still being processed; retry later.",
    },
)


@dataclass
class _Entry:
    started: float
    response: Response | None = None


class IdempotencyStore:
    """Answers kept by key; only answers that acted (2xx and 4xx, not 5xx or 429) are replayed."""

    def __init__(self, clock: TimeScale) -> None:
        self.clock = clock
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._lock = threading.Lock()

    def handle(self, request: Request, handler: Callable[[Request], Response]) -> Response:
        """Run ``handler`` once per key; a repeat replays its answer (marked by a header)."""
        key = request.headers.get(HEADER, "").strip()
        if request.method not in METHODS or not key:
            return handler(request)
        slot = (request.method, request.path, key)
        now = self.clock.elapsed()
        with self._lock:
            entry = self._entries.get(slot)
            if entry is not None and now - entry.started >= LIFETIME:
                entry = None
            if entry is not None:
                if entry.response is None:
                    return IN_FLIGHT
                replay = entry.response
                return Response(
                    replay.status,
                    replay.body,
                    replay.content_type,
                    {**replay.headers, "Idempotent-Replayed": "true"},
                )
            entry = self._entries[slot] = _Entry(now)
        response = handler(request)
        with self._lock:
            if response.status >= 500 or response.status == 429:
                del self._entries[slot]  # not acted on: a retry must really run
            else:
                entry.response = response
        return response
