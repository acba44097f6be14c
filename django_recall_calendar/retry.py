"""When and how long RecallClient waits before repeating a failed request.

Kept apart from the HTTP code so the policy (which statuses, how long) reads in one place.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from . import conf

# Recall refused these (rate limit, overload, no free bot, concurrent change, a key in flight),
# failed on them (500), or a gateway failed on the way; every call may be repeated, since POST and
# PATCH carry an Idempotency-Key (see client.py).
RETRYABLE_STATUSES = frozenset({409, 429, 500, 502, 503, 504, 507})

# Recall's own error or a gateway's: the request may have reached Recall and been applied (a
# DELETE's repeat then finds nothing).
MAYBE_APPLIED_STATUSES = frozenset({500, 502, 504})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delay-seconds or HTTP-date); None if unusable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait; every wait is capped so a call cannot hang."""

    max_retries: int = conf.DEFAULTS["MAX_RETRIES"]
    backoff_base: float = conf.DEFAULTS["BACKOFF_BASE"]
    backoff_cap: float = conf.DEFAULTS["BACKOFF_CAP"]
    retry_after_cap: float = conf.DEFAULTS["RETRY_AFTER_CAP"]

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if min(self.backoff_base, self.backoff_cap, self.retry_after_cap) < 0:
            raise ValueError("backoff_base, backoff_cap and retry_after_cap must be >= 0")

    def backoff(self, attempt: int) -> float:
        """Capped exponential backoff with "equal jitter" for retry number ``attempt`` (0-based).

        Half the delay is fixed so retries never fire immediately; the random half spreads workers
        that failed together so they do not hit Recall again in lockstep.
        """
        ceiling = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Recall's ``Retry-After`` when sent (plus a little jitter, capped), else backoff."""
        seconds = parse_retry_after(retry_after)
        if seconds is None:
            return self.backoff(attempt)
        return min(seconds + random.uniform(0, self.backoff_base), self.retry_after_cap)
