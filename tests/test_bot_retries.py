"""A bot call Recall refuses past the client's retries (429, 507, 5xx) is kept on its event, shown
as "will retry at ...", tried again until it succeeds or the meeting starts, then shown missed.
A Recall change less than 10 minutes before the bot joins is flagged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from django_recall_calendar import budget, scheduling, tasks
from django_recall_calendar.calendars import sync_changes
from django_recall_calendar.models import CalendarEvent, RecordingPolicy
from tests import builders

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]
EVENTS = "/api/v2/calendar-events/"


def in_minutes(minutes: float):
    return (timezone.now() + timedelta(minutes=minutes)).replace(microsecond=0)


@pytest.fixture
def meeting(recall_emulator):
    """A meeting in 20 minutes of a calendar that records everything, mirrored, no bot yet."""
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.ALL
    )
    remote = recall_emulator.add_event(str(calendar.recall_id), start_time=in_minutes(20))
    return calendar, remote


def refuse_bot_calls(recall_emulator, remote: dict, kind: str, retry_after: float | None) -> None:
    """Recall refuses every bot call for the meeting, past all of the client's retries."""
    path = f"{EVENTS}{remote['id']}/bot/"
    recall_emulator.inject_fault(kind, count=100, path=path, retry_after=retry_after)


@pytest.fixture
def refused(recall_emulator, meeting) -> CalendarEvent:
    """The meeting's event once synced while Recall refuses its bot call (507, retry in 30 s)."""
    calendar, remote = meeting
    refuse_bot_calls(recall_emulator, remote, "507", retry_after=30)
    sync_changes(calendar)
    return CalendarEvent.objects.get(recall_id=remote["id"])


def test_a_refused_bot_call_is_kept_with_its_retry_time(recall_emulator, meeting, client):
    calendar, remote = meeting
    refuse_bot_calls(recall_emulator, remote, "507", retry_after=30)
    started = timezone.now()

    sync_changes(calendar)

    event = CalendarEvent.objects.get(recall_id=remote["id"])
    assert "507" in event.bot_failure
    assert started + timedelta(seconds=29) < event.bot_retry_at < started + timedelta(seconds=90)
    state, reason = scheduling.bot_state(event)
    assert state == "retrying" and reason.startswith("will retry at ")
    client.force_login(calendar.user)
    shown = client.get(f"/recall/api/events/{event.pk}/").json()
    assert shown["bot_state"] == "retrying" and "will retry at" in shown["bot_state_reason"]
    assert recall_emulator.bots == {}


def test_a_507_without_retry_after_is_tried_again_in_about_30_seconds(recall_emulator, meeting):
    calendar, remote = meeting
    refuse_bot_calls(recall_emulator, remote, "507", retry_after=None)
    started = timezone.now()

    sync_changes(calendar)

    refused = recall_emulator.requests_for("POST", f"{EVENTS}{remote['id']}/bot/")
    assert refused and {request.status for request in refused} == {507}
    event = CalendarEvent.objects.get(recall_id=remote["id"])
    # Recall's docs: the ad-hoc pool frees up in about 30 s; not the minute guessed otherwise.
    finished = timezone.now()
    assert started + timedelta(seconds=30) <= event.bot_retry_at <= finished + timedelta(seconds=30)
    assert scheduling.bot_state(event)[0] == "retrying"


def test_the_retry_schedules_the_bot_once_recall_accepts(recall_emulator, meeting):
    calendar, remote = meeting
    refuse_bot_calls(recall_emulator, remote, "429", retry_after=1)
    sync_changes(calendar)
    event = CalendarEvent.objects.get(recall_id=remote["id"])
    assert event.bot_retry_at is not None
    recall_emulator.clear_faults()

    too_early = scheduling.retry_bot_calls(now=event.bot_retry_at - timedelta(seconds=1))
    done = scheduling.retry_bot_calls(now=event.bot_retry_at)

    event.refresh_from_db()
    assert too_early.scheduled == 0 and done.scheduled == 1
    assert len(recall_emulator.bots) == 1
    assert event.bot_failure == "" and event.bot_retry_at is None
    assert scheduling.bot_state(event)[0] == "scheduled"


def test_a_bot_call_our_own_budget_refuses_is_retried_when_its_token_frees(
    recall_emulator, meeting, settings
):
    calendar, _ = meeting
    rates = {**settings.RECALL_CALENDAR["RATE_LIMITS"], "bot_scheduling": "1/10min"}
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "RATE_LIMITS": rates}
    recall_emulator.add_event(str(calendar.recall_id), start_time=in_minutes(25))
    started = timezone.now()

    with budget.waiting_at_most(0):
        sync_changes(calendar)

    assert len(recall_emulator.bots) == 1
    (refused,) = CalendarEvent.objects.exclude(bot_retry_at=None)
    assert "budget" in refused.bot_failure
    # Not the minute guessed when nobody says: the time the bucket has a token again.
    assert started + timedelta(minutes=9) < refused.bot_retry_at <= started + timedelta(minutes=11)


def test_a_meeting_that_starts_while_recall_refuses_is_missed(recall_emulator, meeting):
    calendar, remote = meeting
    refuse_bot_calls(recall_emulator, remote, "503", retry_after=0)
    sync_changes(calendar)
    event = CalendarEvent.objects.get(recall_id=remote["id"])

    scheduling.retry_bot_calls(now=event.start_time + timedelta(seconds=1))

    event.refresh_from_db()
    assert event.bot_retry_at is None and "503" in event.bot_failure
    state, reason = scheduling.bot_state(event)
    assert state == "missed" and reason.startswith("missed: ")


def test_the_retry_command_runs_due_bot_calls(recall_emulator, meeting):
    calendar, remote = meeting
    refuse_bot_calls(recall_emulator, remote, "429", retry_after=1)
    sync_changes(calendar)
    recall_emulator.clear_faults()
    CalendarEvent.objects.update(bot_retry_at=timezone.now() - timedelta(seconds=1))

    call_command("recall_webhooks", "--retry-failed")

    assert len(recall_emulator.bots) == 1
    assert CalendarEvent.objects.get().bot_retry_at is None


def test_a_change_less_than_10_minutes_before_the_bot_joins_is_flagged(recall_emulator, meeting):
    calendar, remote = meeting
    sync_changes(calendar)
    event = CalendarEvent.objects.get(recall_id=remote["id"])
    assert "less than 10 minutes" not in scheduling.bot_state(event)[1]

    CalendarEvent.objects.update(recall_updated_at=event.start_time - timedelta(minutes=9))
    event.refresh_from_db()

    state, reason = scheduling.bot_state(event)
    assert state == "scheduled" and "less than 10 minutes before the bot joins" in reason


def test_the_admin_shows_will_retry_at_then_missed(refused, admin_client):
    listing = reverse("admin:recall_calendar_calendarevent_changelist")
    page = reverse("admin:recall_calendar_calendarevent_change", args=[refused.pk])

    for url in (listing, page):
        html = admin_client.get(url).content.decode()
        assert "Refused by Recall: will retry at " in html
        assert "no_bots_available" in html and "missed" not in html.lower()

    scheduling.retry_bot_calls(now=refused.start_time + timedelta(seconds=1))

    for url in (listing, page):
        html = admin_client.get(url).content.decode()
        assert "Refused by Recall: missed: " in html and "no_bots_available" in html
        assert "will retry at" not in html


def test_recalls_refusal_text_is_shown_as_text_not_markup(refused, admin_client):
    """The refusal the admin and the API repeat is Recall's words: markup in it stays text."""
    hostile = '<script>alert("x")</script>'
    CalendarEvent.objects.filter(pk=refused.pk).update(bot_failure=hostile)

    html = admin_client.get(
        reverse("admin:recall_calendar_calendarevent_change", args=[refused.pk])
    ).content.decode()

    assert hostile not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_a_retry_task_that_starts_early_queues_the_retry_again(recall_emulator, queued, refused):
    """RQ's scheduler counts whole seconds: a task can start before its ``run_after``. It finds
    nothing due then, and the retry must still come (it once waited for cron instead)."""
    tasks._enqueue_bot_retries()
    [first] = queued.results
    tried = len(recall_emulator.requests_for("POST", "/bot/"))

    tasks.retry_bot_calls.call()  # a second or so early: nothing is due yet

    assert len(recall_emulator.requests_for("POST", "/bot/")) == tried
    [_, again] = queued.results
    assert again.task.func is tasks.retry_bot_calls.func
    assert again.task.run_after == first.task.run_after == refused.bot_retry_at
