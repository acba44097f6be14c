"""Soonest meeting first: when Recall's bot budget is short, the meetings that start soonest get
the calls there are, and the rest wait for the retry task, which carries the priority of the
soonest of them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_recall_calendar import budget, scheduling, tasks
from django_recall_calendar.models import CalendarEvent, RecordingPolicy
from django_recall_calendar.sync import sync_events
from tests import builders

pytestmark = [
    pytest.mark.recall_emulator(webhooks=False, unruly=False),
    pytest.mark.django_db,
]

BOT_CALLS = ("POST", "/bot/")


@pytest.fixture
def queued(settings):
    settings.TASKS = {
        **settings.TASKS,
        "queued": {"BACKEND": f"{settings.TASKS_MODULE}.backends.dummy.DummyBackend"},
    }
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "TASK_BACKEND": "queued",
        "RATE_LIMITS": {"bot_scheduling": "2/1h"},
    }
    return tasks._task_backends["queued"]


def meetings(emulator, calendar, starts_in: list[timedelta]) -> list[CalendarEvent]:
    """Meetings starting ``starts_in`` from now, mirrored here (in the order given)."""
    now = timezone.now()
    made = [
        emulator.add_event(
            str(calendar.recall_id),
            start_time=(now + delta).isoformat(),
            end_time=(now + delta + timedelta(minutes=30)).isoformat(),
        )
        for delta in starts_in
    ]
    sync_events(calendar)  # the policy is still off: no bot yet
    return [CalendarEvent.objects.get(recall_id=event["id"]) for event in made]


def scheduled_ids(emulator) -> list[str]:
    return [r.path.split("/")[-3] for r in emulator.requests_for(*BOT_CALLS)]


def test_the_soonest_meetings_get_the_budget_and_the_rest_wait_for_the_retry(
    recall_emulator, queued
):
    calendar = builders.recall_calendar(recall_emulator)
    days, hours, minutes = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
    events = meetings(
        recall_emulator, calendar, [3 * days, 20 * minutes, 2 * hours, 5 * days, 50 * minutes]
    )
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.save()

    with budget.waiting_at_most(0):  # a task's short wait, made nil
        result = scheduling.reconcile_calendar(calendar)
    tasks._enqueue_bot_retries()  # what the task door does after its work

    soonest = sorted(events, key=lambda e: e.start_time)
    assert scheduled_ids(recall_emulator) == [str(e.recall_id) for e in soonest[:2]]
    assert (result.scheduled, result.failed) == (2, 3)
    waiting = CalendarEvent.objects.filter(bot_retry_at__isnull=False).order_by("start_time")
    assert list(waiting) == soonest[2:]
    assert {e.bot_retry_at for e in waiting} == {waiting[0].bot_retry_at}  # when a token frees
    assert all("budget" in e.bot_failure for e in waiting)
    [retry] = queued.results
    assert retry.task.func is tasks.retry_bot_calls.func
    assert retry.task.run_after == waiting[0].bot_retry_at
    assert retry.task.priority == scheduling.priority_for(soonest[2].start_time) > 80

    # The budget has room again: the retry sends the rest, soonest first, as far as it lasts.
    CalendarEvent.objects.filter(bot_retry_at__isnull=False).update(bot_retry_at=timezone.now())
    budget.reset()
    with budget.waiting_at_most(0):
        scheduling.retry_bot_calls()

    assert scheduled_ids(recall_emulator) == [str(e.recall_id) for e in soonest[:4]]
    assert list(CalendarEvent.objects.filter(bot_retry_at__isnull=False)) == soonest[4:]


def test_the_retry_of_a_meeting_in_minutes_goes_before_one_of_a_meeting_in_days(
    recall_emulator, queued
):
    """Where the backend orders by priority (the dummy one records it, django-tasks-db runs
    by it), the retry task carries its soonest meeting's priority."""
    calendar = builders.recall_calendar(recall_emulator)
    far, near = meetings(recall_emulator, calendar, [timedelta(days=3), timedelta(minutes=10)])
    CalendarEvent.objects.filter(pk=far.pk).update(bot_retry_at=timezone.now(), bot_failure="x")
    tasks._enqueue_bot_retries()
    tasks._enqueue_bot_retries()  # the same retry time: queued once already
    sooner = timezone.now() - timedelta(seconds=1)
    CalendarEvent.objects.filter(pk=near.pk).update(bot_retry_at=sooner, bot_failure="x")
    tasks._enqueue_bot_retries()

    assert [r.task.priority for r in queued.results] == [-100, 100]


def test_priorities_put_the_meeting_in_minutes_before_the_meeting_in_days():
    now = timezone.now()
    order = [
        scheduling.priority_for(now + delta, now)
        for delta in (
            timedelta(minutes=-5),
            timedelta(minutes=10),
            timedelta(hours=1),
            timedelta(hours=6),
            timedelta(days=1),
            timedelta(days=3),
        )
    ]
    assert order == [100, 100, 96, 76, 4, -100]
