"""Timestamps as Recall writes them, from a clock that never repeats itself.

Event listings are ordered by ``updated_at``; a strictly increasing clock keeps that order total
even when many events change within one microsecond, so an incremental consumer resumes exactly.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

_MICROSECOND = timedelta(microseconds=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_ts(value: datetime) -> str:
    """Fixed-width ISO 8601 with microseconds and ``Z``: sorts lexically as it sorts in time."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def format_time(value: datetime) -> str:
    """A meeting time as Recall shows it: ``2025-01-30T10:00:00Z`` (microseconds only when set)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_ts(value: str | datetime) -> datetime:
    """An aware datetime from ISO 8601 text (``Z``, offsets, or a ``+`` turned into a space)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip().replace(" ", "+") if "T" in value else value.strip()
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class MonotonicClock:
    """``now()`` that is strictly later than its previous answer, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        with self._lock:
            current = utcnow()
            if current <= self._last:
                current = self._last + _MICROSECOND
            self._last = current
            return current


class TimeScale:
    """How fast the emulator's own waits run: ``scale`` emulated seconds pass per real second.

    Recall's durations (a minute of rate limit, Svix's retry schedule, an hour of idempotency) are
    stated in emulated seconds; a test sets ``scale=60`` to live a minute of limits in one second.
    Timestamps on objects stay real time: only the waits the emulator imposes are scaled.
    """

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("time_scale must be > 0.")
        self.scale = scale
        self._origin = time.monotonic()

    def elapsed(self) -> float:
        """Emulated seconds since the emulator started."""
        return (time.monotonic() - self._origin) * self.scale

    def real(self, seconds: float) -> float:
        """The real seconds an emulated wait lasts."""
        return seconds / self.scale
