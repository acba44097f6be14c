"""Sending Recall bots to meetings: schedule, unschedule, and reconcile events with their policy.

What both scheduling modes share lives here: which meetings want a bot, the complete bot config
(Recall replaces rather than patches it), the deduplication key, the order of work. How a bot is
created and recorded is the configured backend's job (:mod:`.backends`).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import bot_configs, bot_retries, conf, signals
from .backends import get_backend
from .bot_configs import deep_merge
from .bot_status import format_local
from .budget import BudgetExhausted
from .client import RecallClient
from .dedup import canonical_meeting_url, deduplication_key
from .exceptions import RecallError
from .models import BotResult, Calendar, CalendarEvent, RecordingPolicy, RecordOverride
from .policies import should_record, skip_rule, unrecordable_reason

logger = logging.getLogger(__name__)

__all__ = [
    "BotAlreadyDispatched",
    "InvalidBotConfig",
    "ReconcileResult",
    "SchedulingError",
    "SchedulingRefused",
    "bot_config_for",
    "bot_config_problem",
    "bot_state",
    "bot_summary",
    "canonical_meeting_url",
    "deduplication_key",
    "has_bot",
    "has_bot_condition",
    "next_bot_retry",
    "reconcile_calendar",
    "reconcile_candidates",
    "reconcile_events",
    "retry_bot_calls",
    "schedule_bot",
    "send_new_bot",
    "set_record_override",
    "unschedule_bot",
    "with_bot",
]


class SchedulingError(Exception):
    """A bot could not be scheduled or removed, for a reason the user can act on."""


class SchedulingRefused(SchedulingError):
    """The event cannot have a bot (ended, deleted, cancelled, no link); Recall is not called."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"No bot can be sent to this meeting ({reason}).")


class InvalidBotConfig(SchedulingError):
    """A bot config the database or Recall would refuse, or a key its sender may not set;
    refused before Recall is called."""


class BotAlreadyDispatched(SchedulingError):
    """Recall refused: the bot is already joining or in the meeting, so it can't be changed now."""


def bot_config_problem(config: Mapping[str, Any]) -> str:
    """What makes a staff member's or the host's ``bot_config`` for one meeting unusable ("" when
    nothing); an end user's is checked with :func:`.bot_configs.user_problem` instead."""
    return bot_configs.staff_problem(config)


def bot_config_for(event: CalendarEvent, bot_config: Mapping[str, Any] | None = None) -> dict:
    """The complete config for ``event``: settings' BOT_CONFIG < the event's own < this call's;
    never a link or start other than the event's (Recall fills them in from the event)."""
    merged = deep_merge(conf.get("BOT_CONFIG") or {}, event.bot_config or {})
    return bot_configs.without_event_fields(deep_merge(merged, bot_config or {}))


@contextmanager
def _dispatched_is_reported() -> Iterator[None]:
    """Turn Recall's "bot already dispatched" answers into a clear :class:`BotAlreadyDispatched`."""
    try:
        yield
    except RecallError as exc:
        if exc.status_code == 405 or (exc.code or "").startswith("cannot_command"):
            raise BotAlreadyDispatched(
                "The bot has already been dispatched to this meeting; Recall can no longer change "
                f"or remove it ({exc})."
            ) from exc
        raise


def _impossible(event: CalendarEvent) -> str:
    """Why no bot can be sent to ``event`` now ("" when one can); Recall may still accept one
    for a disconnected calendar, but the calendar's next reconcile would remove it again."""
    reason = unrecordable_reason(event)
    if not reason and event.calendar.is_disconnected:
        reason = "the calendar is disconnected"
    return reason


@contextmanager
def _one_unit(event: CalendarEvent, override: str | None, bot_config: Mapping | None):
    """The local choice (``override``, the merged ``bot_config``) saved, then the Recall call the
    block makes, as one transaction: Recall refusing rolls the choice back, a save that fails
    stops Recall from being called. The instance keeps its old values when the unit fails."""
    before = (event.record_override, event.bot_config)
    changes: dict[str, Any] = {}
    if override is not None and override != event.record_override:
        changes["record_override"] = override
    if bot_config:
        changes["bot_config"] = deep_merge(event.bot_config or {}, bot_config)
    if not changes:  # an automatic reconcile: nothing local to keep in step
        yield
        return
    for name, value in changes.items():
        setattr(event, name, value)
    try:
        with transaction.atomic():
            CalendarEvent.objects.filter(pk=event.pk).update(**changes)
            yield
    except BaseException:
        event.record_override, event.bot_config = before
        raise


def _schedule(
    event: CalendarEvent,
    client: RecallClient,
    bot_config: Mapping | None,
    override: str | None = None,
) -> None:
    reason = _impossible(event)
    if reason:
        raise SchedulingRefused(reason)
    if bot_config:
        merged = deep_merge(event.bot_config or {}, bot_config)
        problem = bot_config_problem(bot_config) or bot_configs.config_problem(
            bot_configs.without_event_fields(merged)
        )
        if problem:
            raise InvalidBotConfig(problem)
    with _one_unit(event, override, bot_config):
        config = bot_config_for(event)
        key = deduplication_key(event)
        with _dispatched_is_reported():
            get_backend().schedule(event, key, config, client)
    signals.bot_scheduled.send(sender=CalendarEvent, event=event, bot_config=config)


def _unschedule(event: CalendarEvent, client: RecallClient, override: str | None = None) -> None:
    with _one_unit(event, override, None), _dispatched_is_reported():
        get_backend().unschedule(event, client)
    signals.bot_unscheduled.send(sender=CalendarEvent, event=event)


def schedule_bot(
    event: CalendarEvent,
    bot_config: Mapping[str, Any] | None = None,
    *,
    client: RecallClient | None = None,
) -> CalendarEvent:
    """Send a bot to ``event`` now (admin action, REST API).

    ``bot_config`` is merged over the settings' and the event's config and remembered on the event,
    and the choice is remembered as the event's "always" override, so that the next automatic
    reconcile keeps the bot (and its config) instead of undoing the user's decision. Both are
    saved in one unit with the Recall call. It is checked as staff's (:func:`bot_config_problem`);
    an end user's must pass :func:`.bot_configs.user_problem` first (the REST API's serializer).
    """
    _schedule(event, client or RecallClient.from_settings(), bot_config, RecordOverride.ALWAYS)
    return event


def send_new_bot(event: CalendarEvent, *, client: RecallClient | None = None) -> CalendarEvent:
    """Send another bot to a meeting, still on, whose bot failed (the admin's "Send a new bot").

    The failed bot has started, so Recall does not deduplicate onto it: scheduling the meeting
    again creates a bot (managed), or replaces the row's bot (self-managed). The meeting then
    stops showing the failed bot, and shows the new one once it reports.
    """
    failed = event.bot_outcome
    if failed is None or failed.result != BotResult.FAILED:
        raise SchedulingRefused("its bot has not failed")
    schedule_bot(event, client=client)
    if get_backend().bot_ids(event) - {failed.recall_bot_id}:  # a new bot: it will report
        CalendarEvent.objects.filter(pk=event.pk, bot_outcome=failed).update(bot_outcome=None)
        event.bot_outcome = None
    return event


def unschedule_bot(event: CalendarEvent, *, client: RecallClient | None = None) -> CalendarEvent:
    """Remove the bot of ``event`` and remember "never" so an automatic reconcile won't re-add it.

    An ended meeting is refused (its bot has run; deleting bots of past events only burns rate
    limit). A cancelled or deleted one is allowed: removing its bot is the point. A bot another
    copy of the meeting shares stays for it (Recall deletes a bot only when no event uses it).
    """
    if event.end_time <= timezone.now():
        raise SchedulingRefused("ended")
    _unschedule(event, client or RecallClient.from_settings(), RecordOverride.NEVER)
    return event


def has_bot(event: CalendarEvent, now: datetime | None = None) -> bool:
    """Whether the event has a bot to come or in the meeting (the backend's own record of it)."""
    return get_backend().has_bot(event, now or timezone.now())


def has_bot_condition(prefix: str = "") -> Q:
    """SQL for "the event has a bot" (``prefix`` reaches the event through a join, e.g.
    ``"events__"`` to count a calendar's events with a bot; count those with ``distinct=True``)."""
    return get_backend().has_bot_condition(prefix)


def with_bot(events: QuerySet[CalendarEvent], has_bot: bool = True) -> QuerySet[CalendarEvent]:
    """The events of ``events`` that have a bot (``has_bot=False``: that have none)."""
    backend = get_backend()
    condition = backend.has_bot_condition()
    if not has_bot:
        return events.exclude(condition)
    events = events.filter(condition)
    return events.distinct() if backend.needs_distinct() else events


def with_bot_records(events: QuerySet[CalendarEvent]) -> QuerySet[CalendarEvent]:
    """``events`` loading the bot records :func:`has_bot` and :func:`bot_state` read per row."""
    return get_backend().with_bot_records(events)


def _bot_is_current(event: CalendarEvent) -> bool:
    """Whether the event's bot matches its current start, meeting link and key (nothing to do)."""
    return get_backend().is_current(event, deduplication_key(event))


class BotSummary(NamedTuple):
    """Whether a bot goes to a meeting, why (not), and for a skipped meeting the rule
    (:class:`.policies.Rule`) that skipped it ("" when none did)."""

    state: str
    reason: str
    rule: str = ""


def bot_summary(event: CalendarEvent, now: datetime | None = None) -> BotSummary:
    """The :class:`BotSummary` of ``event`` for the admin, the REST API and the pages; times are
    in the current (the viewer's) time zone."""
    now = now or timezone.now()
    if event.end_time <= now:
        if event.bot_outcome_id or has_bot(event, now):
            return BotSummary("not_possible", "ended")
        decision = skip_rule(event)
        return BotSummary("not_possible", "ended", "" if decision.record else decision.rule)
    failed = bot_retries.failure_state(event, lambda moment: format_local(moment, now))
    if failed is not None:
        return BotSummary(*failed)
    if has_bot(event, now):
        joins = f"bot joins at {format_local(event.start_time, now)}"
        if bot_retries.changed_late(event):
            joins += (
                "; changed less than 10 minutes before the bot joins: Recall may not pass the "
                "change on to the bot"
            )
        return BotSummary("scheduled", joins)
    decision = should_record(event, now=now)
    rule = "" if decision.record else decision.rule
    reason = _impossible(event)
    if reason:
        return BotSummary("not_possible", reason, rule)
    return BotSummary("none", decision.reason if rule else "wanted, not scheduled yet", rule)


def bot_state(event: CalendarEvent) -> tuple[str, str]:
    """("scheduled" | "none" | "not_possible", a readable reason) for the admin and the REST API."""
    summary = bot_summary(event)
    return summary.state, summary.reason


@dataclass
class ReconcileResult:
    scheduled: int = 0
    rescheduled: int = 0
    unscheduled: int = 0
    unchanged: int = 0
    failed: int = 0
    #: Recall id of each failed event -> what went wrong.
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, other: ReconcileResult) -> None:
        """Count ``other`` in too (one pass reconciled page by page)."""
        for name in ("scheduled", "rescheduled", "unscheduled", "unchanged", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.update(other.errors)


#: Rows :func:`reconcile_events` loads at a time from a QuerySet: its memory stays that of one
#: chunk whether a calendar has a hundred upcoming meetings or a hundred thousand.
RECONCILE_CHUNK = 500


def _in_order(events: Iterable[CalendarEvent]) -> Iterator[CalendarEvent]:
    """``events`` earliest first; a QuerySet is read in chunks of :data:`RECONCILE_CHUNK` rows,
    each starting after the last one seen (start time, then pk), so no chunk is read twice or
    skipped while the bots of earlier ones change."""
    if not isinstance(events, QuerySet):
        yield from sorted(events, key=lambda event: (event.start_time, event.pk or 0))
        return
    # ``raw`` is never read here, and can be most of a row's bytes.
    ordered = with_bot_records(events.select_related("calendar").defer("raw")).order_by(
        "start_time", "pk"
    )
    chunk = list(ordered[:RECONCILE_CHUNK])
    while chunk:
        yield from chunk
        if len(chunk) < RECONCILE_CHUNK:
            return
        last = chunk[-1]
        after = Q(start_time__gt=last.start_time) | Q(start_time=last.start_time, pk__gt=last.pk)
        chunk = list(ordered.filter(after)[:RECONCILE_CHUNK])


def reconcile_events(
    events: Iterable[CalendarEvent],
    *,
    client: RecallClient | None = None,
    now: datetime | None = None,
) -> ReconcileResult:
    """Bring the bots of upcoming ``events`` in line with their policy, earliest first.

    Only differences cost a Recall call: schedule when wanted and absent, schedule again when the
    meeting moved or its link changed, unschedule when no longer wanted. One failure is recorded
    in the result and the run goes on. When Recall's budget is spent for longer than this context
    may wait, this meeting and every later one are kept for :func:`retry_bot_calls` at once.
    """
    now = now or timezone.now()
    result = ReconcileResult()
    ordered = _in_order(events)
    for event in ordered:
        if event.end_time <= now:
            continue
        try:
            outcome = _reconcile_one(event, client, now)
        except BudgetExhausted as exc:
            # The soonest meetings had the tokens there were; this one and every later one wait
            # for the retry (one UPDATE, not a wait for a token per event).
            rest = [event, *(later for later in ordered if later.end_time > now)]
            result.failed += len(rest)
            bot_retries.record_failures(rest, exc, now)
            logger.info("%d bot call(s) wait for Recall's budget until %s", len(rest), exc.retry_at)
            break
        except (RecallError, SchedulingError) as exc:
            result.failed += 1
            result.errors[str(event.recall_id)] = str(exc)
            logger.warning("Reconciling the bot of event %s failed: %s", event.recall_id, exc)
            if isinstance(exc, RecallError):
                bot_retries.record_failure(event, exc, now)
        else:
            setattr(result, outcome, getattr(result, outcome) + 1)
            bot_retries.clear_failure(event)
    return result


def retry_bot_calls(
    *, client: RecallClient | None = None, now: datetime | None = None
) -> ReconcileResult:
    """Try again the bot calls Recall refused whose time has come; a meeting that started
    meanwhile is marked missed. Failing again records the next retry (see ``bot_retries``).

    The due calls are claimed first (each by one retry, however many run at once), then
    reconciled here or handed off in batches (:func:`bots_handed_to`)."""
    now = now or timezone.now()
    bot_retries.give_up_started(now)
    claimed = bot_retries.claim_due(now)
    return reconcile_or_hand_off(CalendarEvent.objects.filter(pk__in=claimed), client=client)


#: Meetings per batch handed to a door by :func:`bots_handed_to`.
BOT_BATCH = 25

BotHandoff = Callable[[list[int], datetime], Any]
_bot_handoff: contextvars.ContextVar[BotHandoff | None] = contextvars.ContextVar(
    "recall_bot_handoff", default=None
)


@contextmanager
def bots_handed_to(handoff: BotHandoff) -> Iterator[None]:
    """Inside, :func:`reconcile_or_hand_off` hands the meetings to ``handoff`` in batches of
    :data:`BOT_BATCH` (event pks, soonest first, and the batch's soonest start) instead of
    reconciling them: the task door enqueues a task per batch, so several workers send bots at
    once while a sweep goes on listing."""
    token = _bot_handoff.set(handoff)
    try:
        yield
    finally:
        _bot_handoff.reset(token)


def reconcile_or_hand_off(
    events: QuerySet[CalendarEvent], *, client: RecallClient | None = None
) -> ReconcileResult:
    """:func:`reconcile_events` here, or, inside :func:`bots_handed_to`, the upcoming ones handed
    off in batches soonest first (the result then counts nothing: the batches do the work)."""
    handoff = _bot_handoff.get()
    if handoff is None:
        return reconcile_events(events, client=client)
    rows = list(
        events.filter(end_time__gt=timezone.now())
        .order_by("start_time", "pk")
        .values_list("pk", "start_time")
    )
    for first in range(0, len(rows), BOT_BATCH):
        batch = rows[first : first + BOT_BATCH]
        handoff([pk for pk, _ in batch], batch[0][1])
    return ReconcileResult()


def priority_for(start: datetime, now: datetime | None = None) -> int:
    """A task priority (-100..100, higher first) for work on a meeting starting at ``start``:
    100 within the next quarter hour, one less per quarter hour, -100 from a day and a half on."""
    minutes = (start - (now or timezone.now())).total_seconds() / 60
    return max(-100, min(100, 100 - int(max(minutes, 0) // 15)))


def bot_retry_priority() -> int | None:
    """The priority of the retry task: that of the soonest meeting whose bot call waits."""
    soonest = bot_retries.soonest_waiting()
    return None if soonest is None else priority_for(soonest)


def next_bot_retry() -> datetime | None:
    """When the earliest refused bot call is due again (None when none waits)."""
    return bot_retries.next_retry()


def _reconcile_one(event: CalendarEvent, client: RecallClient | None, now: datetime) -> str:
    """Apply the policy to one upcoming event; the :class:`ReconcileResult` counter to bump."""
    wanted = should_record(event, now=now).record
    had_bot = has_bot(event, now)
    if wanted and not _bot_is_current(event):
        _schedule(event, client or RecallClient.from_settings(), None)
        return "rescheduled" if had_bot else "scheduled"
    if not wanted and had_bot:
        _unschedule(event, client or RecallClient.from_settings())
        return "unscheduled"
    return "unchanged"


def _wants_nothing(calendar: Calendar) -> bool:
    """Whether no event of ``calendar`` can be wanted without its own "always" override: the policy
    is off and no series is overridden to "always" (see :func:`policies.should_record`)."""
    series = (calendar.series_overrides or {}).values()
    return calendar.recording_policy == RecordingPolicy.OFF and RecordOverride.ALWAYS not in series


def reconcile_candidates(events: QuerySet[CalendarEvent]) -> QuerySet[CalendarEvent]:
    """The subset of ``events`` that :func:`reconcile_events` could make a Recall call for.

    In a calendar that wants nothing, only an event with a bot (to remove) or an "always" override
    (to schedule) can need a call; every other one would be counted unchanged. Selecting them in
    SQL spares loading and evaluating thousands of rows after a large sync with recording off.
    """
    quiet = [
        calendar.pk
        for calendar in Calendar.objects.filter(pk__in=events.values("calendar_id")).only(
            "pk", "recording_policy", "series_overrides"
        )
        if _wants_nothing(calendar)
    ]
    if not quiet:
        return events
    backend = get_backend()
    candidates = events.filter(
        ~Q(calendar_id__in=quiet)
        | Q(record_override=RecordOverride.ALWAYS)
        | backend.has_bot_condition()
    )
    return candidates.distinct() if backend.needs_distinct() else candidates


def reconcile_calendar(
    calendar: Calendar, *, client: RecallClient | None = None
) -> ReconcileResult:
    """Reconcile every upcoming event of ``calendar`` (after a policy change, from admin or API)."""
    events = calendar.events.filter(end_time__gt=timezone.now())
    return reconcile_events(events, client=client)


def set_record_override(
    event: CalendarEvent, override: str, bot_config: Mapping[str, Any] | None = None
) -> CalendarEvent:
    """Make Recall follow the user's choice for one meeting, and remember the choice.

    "always" schedules and "never" unschedules (both remember the override, so the next sync keeps
    them); "" hands the meeting back to its calendar's policy and applies it now. The REST API and
    the example project's meeting switch both call this one function.
    """
    if override == RecordOverride.ALWAYS:
        return schedule_bot(event, bot_config or None)
    if override == RecordOverride.NEVER:
        return unschedule_bot(event)
    with _one_unit(event, RecordOverride.DEFAULT, None):
        now = timezone.now()
        if event.end_time > now:
            _reconcile_one(event, None, now)  # its errors keep their type (409 vs 502 in the API)
    return event
