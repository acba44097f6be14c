"""One Recall call budget for every process and machine of the site.

Recall's limits are per workspace (OpenAPI ``x-throttles``): whatever runs the calls — web
processes, task workers on several machines, ``manage.py recall_sync`` from cron — shares them.
Before each call :mod:`.client` takes a token here from the bucket of the call's endpoint class;
the buckets live in a store every process sees (Redis through the ``limits`` library's moving
window: an exact count of the calls in the last period, so a burst at a window's edge never
doubles the rate as a fixed window would; or the database through :mod:`.budget_store`).

When a bucket is empty the caller waits until a token frees, but only up to the wait allowed in
its context (:func:`waiting_at_most`): a web request waits briefly, a task waits a little and is
otherwise deferred by its door (:class:`BudgetExhausted` says until when).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from . import conf
from .exceptions import RecallRateLimitError

logger = logging.getLogger(__name__)

EVENT_LISTINGS = "event_listings"
CALENDAR_LISTINGS = "calendar_listings"
BOT_SCHEDULING = "bot_scheduling"
BOT_V1 = "bot_v1"
OTHER = "other"

#: Endpoint classes as Recall's ``x-throttles`` group them, with readable names for the admin.
CLASSES = {
    EVENT_LISTINGS: "Event listings (GET /api/v2/calendar-events/)",
    CALENDAR_LISTINGS: "Calendar listings (GET /api/v2/calendars/)",
    BOT_SCHEDULING: "Bot schedule/remove (/api/v2/calendar-events/{id}/bot/)",
    BOT_V1: "v1 bot list/create (/api/v1/bot/)",
    OTHER: "Every other call (per endpoint at Recall)",
}

_BOT_PATH = re.compile(r"^/api/v2/calendar-events/[^/]+/bot/$")
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")

#: Counters kept this long (the admin's "429s seen").
COUNTER_SECONDS = 24 * 3600

_max_wait: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "recall_budget_max_wait", default=None
)
_tally: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar(
    "recall_budget_tally", default=None
)


class BudgetExhausted(RecallRateLimitError):
    """The bucket stays empty for longer than this context may wait; retry at ``retry_at``."""

    def __init__(self, endpoint_class: str, retry_at: datetime, method: str, path: str) -> None:
        self.endpoint_class = endpoint_class
        self.retry_at = retry_at
        super().__init__(
            f"Recall's rate limit budget for {endpoint_class} is spent until "
            f"{retry_at:%H:%M:%S} UTC.",
            status_code=429,
            code="budget_exhausted",
            method=method,
            path=path,
            # Like Recall's own Retry-After, so a refused bot call is kept until the token frees.
            retry_after=max((retry_at - datetime.now(UTC)).total_seconds(), 0.0),
        )


def endpoint_class(method: str, path: str) -> str:
    """The bucket a call draws from (``path`` without the query string)."""
    if method == "GET" and path == "/api/v2/calendar-events/":
        return EVENT_LISTINGS
    if method == "GET" and path == "/api/v2/calendars/":
        return CALENDAR_LISTINGS
    if method in ("POST", "DELETE") and _BOT_PATH.match(path):
        return BOT_SCHEDULING
    if method in ("GET", "POST") and path == "/api/v1/bot/":
        return BOT_V1
    return OTHER


def parse_rate(text: object) -> RateLimitItem:
    """``"60/min"``, ``"5/10s"``, ``"600/minute"``, ``"1/h"`` as a limit; ValueError otherwise."""
    match = _RATE.match(text) if isinstance(text, str) else None
    unit = _UNITS.get(match.group(3)) if match else None
    if match is None or unit is None:
        raise ValueError(f"{text!r} is not a rate such as '60/min' or '5/10s'.")
    amount, multiples = int(match.group(1)), int(match.group(2) or 1)
    if amount < 1 or multiples < 1:
        raise ValueError(f"{text!r}: calls and period must be at least 1.")
    return RateLimitItemPerSecond(amount, multiples * unit)


def rates() -> dict[str, RateLimitItem]:
    """Every endpoint class's limit: ``RATE_LIMITS`` over the defaults, parsed."""
    configured = conf.get("RATE_LIMITS")
    if not isinstance(configured, dict):
        raise ImproperlyConfigured("RECALL_CALENDAR['RATE_LIMITS'] must be a dict.")
    merged = {**conf.DEFAULTS["RATE_LIMITS"], **configured}
    unknown = set(merged) - set(CLASSES)
    if unknown:
        raise ImproperlyConfigured(
            f"RECALL_CALENDAR['RATE_LIMITS'] has unknown endpoint classes {sorted(unknown)}; "
            f"expected {sorted(CLASSES)}."
        )
    try:
        return {name: parse_rate(value) for name, value in merged.items()}
    except ValueError as exc:
        raise ImproperlyConfigured(f"RECALL_CALENDAR['RATE_LIMITS']: {exc}") from None


# -- the store -------------------------------------------------------------------------------------


def storage_uri() -> str:
    """``RATE_LIMIT_STORAGE`` when set, else the Redis server of Django's default cache when it is
    a ``RedisCache``, else the database: a store the host already runs and every process sees."""
    explicit = conf.get("RATE_LIMIT_STORAGE")
    if explicit:
        return str(explicit)
    cache = getattr(settings, "CACHES", {}).get("default", {})
    if cache.get("BACKEND", "").endswith("RedisCache"):
        location = cache.get("LOCATION")
        if isinstance(location, list | tuple):
            location = location[0]
        if location:
            return str(location)
    return "database://"


def is_shared() -> bool:
    """Whether every process draws from the same buckets (not this process's memory)."""
    return not storage_uri().startswith("memory://")


@functools.lru_cache(maxsize=8)
def _storage_for(uri: str, prefix: str) -> Storage:
    if uri.startswith("database:"):
        from . import budget_store  # registers the scheme; it needs the app registry ready

        return budget_store.DatabaseStorage(uri)
    options = {"key_prefix": prefix} if uri.startswith(("redis", "rediss", "valkey")) else {}
    return storage_from_string(uri, **options)


def storage() -> Storage:
    return _storage_for(storage_uri(), conf.get("RATE_LIMIT_KEY_PREFIX"))


def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage())


# -- taking a token --------------------------------------------------------------------------------


def default_wait() -> float:
    return float(conf.get("RATE_LIMIT_WAIT"))


@contextmanager
def waiting_at_most(seconds: float) -> Iterator[None]:
    """Calls inside wait at most ``seconds`` for a token, then raise :class:`BudgetExhausted`."""
    token = _max_wait.set(max(float(seconds), 0.0))
    try:
        yield
    finally:
        _max_wait.reset(token)


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Count the tokens taken inside, per endpoint class (``recall_sync`` reports its calls)."""
    tally: Counter[str] = Counter()
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)


def take(method: str, path: str) -> None:
    """Take one token for the call ``method path``, waiting while this context allows."""
    name = endpoint_class(method, path)
    item = rates()[name]
    limiter = _limiter()
    allowed = _max_wait.get()
    deadline = time.monotonic() + (default_wait() if allowed is None else allowed)
    while not limiter.hit(item, name):
        free_at = limiter.get_window_stats(item, name).reset_time
        wait = max(free_at - time.time(), 0.0) + 0.005
        if time.monotonic() + wait > deadline:
            note(name, "deferred")
            raise BudgetExhausted(name, datetime.fromtimestamp(free_at, UTC), method, path)
        time.sleep(wait)
    note(name, "calls")
    tally = _tally.get()
    if tally is not None:
        tally[name] += 1


def note(name: str, counter: str) -> None:
    """Count one event (``calls``, ``throttled``: a 429 from Recall, ``deferred``) for the admin."""
    try:
        storage().incr(f"recall-budget/{counter}/{name}", COUNTER_SECONDS)
    except Exception:  # a counter must never fail the call it counts
        logger.exception("Could not count a Recall %s for %s", counter, name)


def throttled(method: str, path: str) -> None:
    """Recall answered 429 despite the budget (another client of the workspace, a tight margin)."""
    note(endpoint_class(method, path), "throttled")  # the client logs the retry itself


@dataclass(frozen=True)
class BucketState:
    name: str
    label: str
    limit: str
    used: int
    calls: int
    throttled: int
    deferred: int


def state() -> list[BucketState]:
    """Each bucket: its limit, tokens taken in the current period, and the day's counters."""
    limiter, store, rows = _limiter(), storage(), []
    for name, item in rates().items():
        stats = limiter.get_window_stats(item, name)
        counters = {
            counter: int(store.get(f"recall-budget/{counter}/{name}") or 0)
            for counter in ("calls", "throttled", "deferred")
        }
        rows.append(
            BucketState(
                name=name,
                label=CLASSES[name],
                limit=f"{item.amount}/{item.get_expiry()}s",
                used=item.amount - stats.remaining,
                **counters,
            )
        )
    return rows


def reset() -> None:
    """Empty every bucket and counter of this store (tests; after a change of the limits).

    The whole store (for Redis: every key under ``RATE_LIMIT_KEY_PREFIX``), since a bucket's key
    names its rate and the rates may have changed since.
    """
    storage().reset()
