"""Recall's per-workspace rate limits (OpenAPI ``x-throttles``), answered with 429 + Retry-After.

Each limit is a sliding window of one (emulated) minute over the workspace's requests to one
endpoint class. The numbers are the ones the spec publishes (branch 1.11).
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque

from .clock import TimeScale
from .server import Response

WINDOW = 60.0  # emulated seconds

# (method, path pattern) -> requests per minute per workspace
LIMITS: dict[tuple[str, str], int] = {
    ("GET", "/api/v2/calendars/"): 60,
    ("POST", "/api/v2/calendars/"): 300,
    ("GET", "/api/v2/calendars/{id}/"): 300,
    ("PATCH", "/api/v2/calendars/{id}/"): 300,
    ("DELETE", "/api/v2/calendars/{id}/"): 300,
    ("POST", "/api/v2/calendars/{id}/access-token/"): 300,
    ("GET", "/api/v2/calendar-events/"): 60,
    ("GET", "/api/v2/calendar-events/{id}/"): 300,
    ("POST", "/api/v2/calendar-events/{id}/bot/"): 600,
    ("DELETE", "/api/v2/calendar-events/{id}/bot/"): 600,
    ("GET", "/api/v1/bot/"): 60,
    ("POST", "/api/v1/bot/"): 60,
    ("GET", "/api/v1/bot/{id}/"): 300,
    ("PATCH", "/api/v1/bot/{id}/"): 300,
    ("DELETE", "/api/v1/bot/{id}/"): 300,
}

_PATTERNS = [
    (method, re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"), (method, path), limit)
    for (method, path), limit in LIMITS.items()
]


def endpoint_class(method: str, path: str) -> tuple[tuple[str, str], int] | None:
    """The limited endpoint a request counts against, and its limit."""
    for pattern_method, pattern, name, limit in _PATTERNS:
        if method == pattern_method and pattern.match(path):
            return name, limit
    return None


class Throttle:
    """Counts requests per endpoint class; the one over its limit is refused with a wait."""

    def __init__(self, clock: TimeScale, limits: dict[tuple[str, str], int] | None = None) -> None:
        self.clock = clock
        self.overrides = dict(limits or {})
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, method: str, path: str) -> Response | None:
        """None when the request may proceed (and is counted), else Recall's 429."""
        found = endpoint_class(method, path)
        if found is None:
            return None
        name, limit = found
        limit = self.overrides.get(name, limit)
        now = self.clock.elapsed()
        with self._lock:
            seen = self._seen.setdefault(name, deque())
            while seen and now - seen[0] >= WINDOW:
                seen.popleft()
            if len(seen) < limit:
                seen.append(now)
                return None
            wait = WINDOW - (now - seen[0])
        # Recall answers whole seconds; a scaled clock answers the real seconds it will take.
        seconds = self.clock.real(math.ceil(wait))
        text = f"{seconds:.3f}".rstrip("0").rstrip(".") or "0"
        return Response.json(
            429,
            {"detail": f"Request was throttled. Expected available in {text} seconds."},
            {"Retry-After": text},
        )
