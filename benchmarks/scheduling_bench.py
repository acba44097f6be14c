"""Scheduling: Recall calls made when 10 of 1,000 recorded meetings change.

The calendar records every meeting with a link (policy "all"); a first sync schedules 1,000 bots.
Then 10 meetings move at the emulator and the app catches up twice over:
- a webhook's sync (``calendars.sync_changes``), which applies the policy to what changed;
- ``reconcile_calendar`` over all 1,000 upcoming meetings (e.g. after a policy change), once right
  after that sync, and once after 10 more moves mirrored without reconciling (``sync.sync_events``),
  so that reconcile alone has to find the 10 among the 1,000.
Calls are counted in the emulator's request log.
"""

from __future__ import annotations

from datetime import timedelta

from django_recall_calendar import sync
from django_recall_calendar.calendars import sync_changes
from django_recall_calendar.models import CalendarEvent, RecordingPolicy
from django_recall_calendar.scheduling import reconcile_calendar
from django_recall_calendar.utils import parse_datetime_or_none

from .harness import emulator, make_calendar
from .table import print_goal, print_table

EVENTS = 1_000
CHANGED = 10


def calls(running, since: int) -> tuple[int, int]:
    """(list requests, bot schedule/unschedule requests) logged after index ``since``."""
    logged = running.requests[since:]
    listing = sum(1 for r in logged if r.method == "GET" and r.path.endswith("/calendar-events/"))
    bots = sum(1 for r in logged if r.path.endswith("/bot/"))
    return listing, bots


def move(running, events: list[dict]) -> None:
    for event in events:
        start = parse_datetime_or_none(event["start_time"]) + timedelta(hours=1)
        running.update_event(event["id"], start_time=start, end_time=start + timedelta(minutes=30))


def run(database: str) -> None:
    with emulator() as running:
        calendar = make_calendar(running, recording_policy=RecordingPolicy.ALL)
        events = running.add_events(str(calendar.recall_id), EVENTS, notify=False)
        sync_changes(calendar)
        scheduled = sum(1 for e in running.events.values() if e["bots"])
        assert scheduled == EVENTS, scheduled

        move(running, events[:CHANGED])
        mark = len(running.requests)
        sync_changes(calendar)
        after_sync = calls(running, mark)
        mark = len(running.requests)
        reconcile_calendar(calendar)
        reconcile_unchanged = calls(running, mark)

        move(running, events[CHANGED : 2 * CHANGED])
        sync.sync_events(calendar)
        mark = len(running.requests)
        result = reconcile_calendar(calendar)
        reconcile_changed = calls(running, mark)

        remote = {e["id"]: e["bots"][0]["start_time"] for e in running.events.values()}
        local = {str(e.recall_id): e.start_time for e in CalendarEvent.objects.all()}
        assert all(parse_datetime_or_none(remote[k]) == v for k, v in local.items())
        assert result.rescheduled == CHANGED, result

    print_table(
        f"Recall calls when {CHANGED} of {EVENTS:,} recorded meetings move ({database})",
        ["step", "list requests", "bot calls"],
        [
            ["webhook sync (sync_changes)", *after_sync],
            [f"reconcile_calendar, all {EVENTS:,}, nothing left to do", *reconcile_unchanged],
            [f"reconcile_calendar, all {EVENTS:,}, {CHANGED} moved", *reconcile_changed],
        ],
    )
    worst = max(after_sync[1], reconcile_changed[1] + reconcile_changed[0])
    print_goal(
        f"scheduling calls ({database})",
        f"{CHANGED} or fewer Recall bot calls for {CHANGED} changed of {EVENTS:,}",
        worst <= CHANGED,
        f"{after_sync[1]} bot calls after the sync (+{after_sync[0]} list request), "
        f"{reconcile_unchanged[1]} for a reconcile with nothing to do, "
        f"{reconcile_changed[1]} for a reconcile finding the {CHANGED} moved",
    )
