"""The one sync flow (refresh, events, bots) that every door calls: each changed meeting's bot is
reconciled once per pass, never twice, whichever door started the pass."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from django_recall_calendar.calendars import sync_calendar, sync_changes
from django_recall_calendar.models import RecordingPolicy
from django_recall_calendar.scheduling import reconcile_events
from django_recall_calendar.sync import sync_events
from tests import builders

from .test_scheduling import bot_calls, in_hours, local

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test starts the pass it means to
]


@pytest.fixture
def emulator(recall_emulator):
    return recall_emulator


def connect(emulator, email: str):
    return builders.recall_calendar(emulator, email, recording_policy=RecordingPolicy.ALL)


def test_a_full_pass_calls_recall_once_per_changed_meeting(emulator):
    calendar = connect(emulator, "alice@acme.example")
    remotes = [
        emulator.add_event(str(calendar.recall_id), start_time=in_hours(24 + i)) for i in range(6)
    ]
    sync_calendar(calendar)
    assert len(bot_calls(emulator)) == 6
    for remote in remotes[:3]:  # three meetings move; their bots must follow, once each
        emulator.update_event(
            remote["id"], start_time=in_hours(72), end_time=in_hours(73), title="Moved"
        )
    before = len(bot_calls(emulator))

    done = sync_calendar(calendar)

    assert done.events.updated == 3
    assert (done.bots.rescheduled, done.bots.unchanged) == (3, 3)
    assert len(bot_calls(emulator)) - before == 3


@pytest.mark.parametrize("door", ["function", "command"])
def test_a_refused_bot_is_tried_once_per_pass_not_once_per_listener(emulator, door):
    """The bot of a changed meeting that Recall keeps refusing costs one attempt per pass: the
    pass no longer reconciles the changed events twice (once for the sync, once for the sweep)."""
    calendar = connect(emulator, "alice@acme.example")
    remote = emulator.add_event(str(calendar.recall_id), start_time=in_hours(24))
    bot_path = f"/api/v2/calendar-events/{remote['id']}/bot/"
    emulator.inject_fault("500", count=100, path=bot_path)
    sync_events(calendar)  # mirrored, bots untouched
    reconcile_events([local(remote)])
    one_attempt = len(emulator.requests_for("POST", bot_path))  # with the client's own retries
    emulator.update_event(remote["id"], title="Changed, so the next pass sees it")

    if door == "command":
        call_command("recall_sync", calendar=[str(calendar.pk)])
    else:
        assert sync_calendar(calendar).bots.failed == 1

    assert len(emulator.requests_for("POST", bot_path)) == 2 * one_attempt
    assert local(remote).bots == []


def test_a_webhook_pass_reconciles_only_what_changed(emulator):
    calendar = connect(emulator, "alice@acme.example")
    for i in range(4):
        emulator.add_event(str(calendar.recall_id), start_time=in_hours(24 + i))
    sync_changes(calendar)
    new = emulator.add_event(str(calendar.recall_id), start_time=in_hours(48))
    before = len(bot_calls(emulator))

    done = sync_changes(calendar)

    assert (done.events.created, done.bots.scheduled, done.bots.unchanged) == (1, 1, 0)
    assert len(bot_calls(emulator)) - before == 1
    assert local(new).bots
