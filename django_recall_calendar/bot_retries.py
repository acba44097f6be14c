"""A bot call Recall refused after the client's own retries is kept on its event, not dropped.

Recall refuses for a while (429 past its rate limit, 507 with its ad-hoc pool empty, a 5xx), and
the meeting may still be caught: the event records the failure and when to try again (Recall's
``Retry-After``; about 30 s for a 507, per Recall's docs), and ``scheduling.retry_bot_calls``
tries again until the call succeeds or the meeting starts, when the event shows it was missed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min, QuerySet

from .exceptions import RecallError
from .models import CalendarEvent

# Seconds to wait when Recall gave no Retry-After: a 507 frees up in about 30 s (Recall's docs).
DEFAULT_WAITS = {507: 30.0}
FALLBACK_WAIT = 60.0
FAILURE_MAX_LENGTH = 1000

# Recall may not pass a change made this close to the join time to a bot that is initialising.
LATE_CHANGE = timedelta(minutes=10)


def is_temporary(exc: RecallError) -> bool:
    """Whether a later try may succeed: no answer, a conflict, throttling, trouble at Recall."""
    status = exc.status_code
    return status is None or status in (409, 429) or status >= 500


def record_failure(event: CalendarEvent, exc: RecallError, now: datetime) -> datetime | None:
    """Keep the failure on the event with its retry time (None: no retry before the meeting)."""
    retry_at = None
    if is_temporary(exc):
        wait = exc.retry_after
        if wait is None:
            wait = DEFAULT_WAITS.get(exc.status_code or 0, FALLBACK_WAIT)
        candidate = now + timedelta(seconds=wait)
        if candidate < event.start_time:
            retry_at = candidate
    event.bot_failure = str(exc)[:FAILURE_MAX_LENGTH]
    event.bot_retry_at = retry_at
    CalendarEvent.objects.filter(pk=event.pk).update(
        bot_failure=event.bot_failure, bot_retry_at=retry_at
    )
    return retry_at


def record_failures(events: list[CalendarEvent], exc: RecallError, now: datetime) -> None:
    """:func:`record_failure` for many events at once (Recall's budget is spent for all of them
    alike): one UPDATE for those whose meeting starts after the retry, one for the rest."""
    failure = str(exc)[:FAILURE_MAX_LENGTH]
    wait = exc.retry_after if exc.retry_after is not None else FALLBACK_WAIT
    retry_at = now + timedelta(seconds=wait)
    pks = [event.pk for event in events]
    waiting = CalendarEvent.objects.filter(pk__in=pks)
    waiting.filter(start_time__gt=retry_at).update(bot_failure=failure, bot_retry_at=retry_at)
    waiting.filter(start_time__lte=retry_at).update(bot_failure=failure, bot_retry_at=None)


def clear_failure(event: CalendarEvent) -> None:
    """The bot call went through (or is no longer wanted): nothing is pending any more."""
    if event.bot_failure or event.bot_retry_at:
        event.bot_failure, event.bot_retry_at = "", None
        CalendarEvent.objects.filter(pk=event.pk).update(bot_failure="", bot_retry_at=None)


def due(now: datetime) -> QuerySet[CalendarEvent]:
    """Events whose refused bot call is due again, meeting not started yet."""
    return CalendarEvent.objects.filter(bot_retry_at__lte=now, start_time__gt=now)


def claim_due(now: datetime) -> list[int]:
    """Take the due retries, soonest meeting first, clearing their time so that no other retry
    running at once takes them too (rows another transaction holds are skipped); the caller
    reconciles them, which records a new retry if the call fails again."""
    with transaction.atomic():
        due_now = due(now).select_for_update(skip_locked=True).order_by("start_time", "pk")
        claimed = list(due_now.values_list("pk", flat=True))
        CalendarEvent.objects.filter(pk__in=claimed).update(bot_retry_at=None)
    return claimed


def give_up_started(now: datetime) -> int:
    """A meeting that started while its bot call waited is missed: the failure stays, the retry
    goes."""
    return CalendarEvent.objects.filter(bot_retry_at__isnull=False, start_time__lte=now).update(
        bot_retry_at=None
    )


def next_retry() -> datetime | None:
    """The earliest pending retry, for a task to run then."""
    return CalendarEvent.objects.aggregate(first=Min("bot_retry_at"))["first"]


def soonest_waiting() -> datetime | None:
    """The start of the soonest meeting whose bot call waits: the retry task's priority."""
    waiting = CalendarEvent.objects.filter(bot_retry_at__isnull=False)
    return waiting.aggregate(first=Min("start_time"))["first"]


def failure_state(event: CalendarEvent, shown: Callable[[datetime], str]) -> tuple[str, str] | None:
    """("retrying", "will retry at ...") or ("missed", "missed: ...") when a call was refused;
    ``shown`` writes the retry time for the viewer."""
    if event.bot_retry_at is not None:
        return "retrying", f"will retry at {shown(event.bot_retry_at)}: {event.bot_failure}"
    if event.bot_failure:
        return "missed", f"missed: {event.bot_failure}"
    return None


def changed_late(event: CalendarEvent) -> bool:
    """Recall changed the meeting less than 10 minutes before its bot joins."""
    changed = event.recall_updated_at
    return changed is not None and event.start_time - LATE_CHANGE < changed <= event.start_time
