"""A disconnection at Recall unschedules the calendar's future bots without moving their events'
``updated_at``, and a reconnection is announced by ``calendar.update`` alone: the app re-reads the
calendar's events and reconciles their bots on either, so its rows say what Recall holds and the
policy's meetings get their bots back (found by tests/reliability/test_convergence.py)."""

from __future__ import annotations

import pytest

from django_recall_calendar import scheduling
from django_recall_calendar.calendars import sync_changes
from django_recall_calendar.models import CalendarEvent, RecordingPolicy
from django_recall_calendar.testing.pytest_plugin import DjangoClientDelivery
from tests import builders

pytestmark = [pytest.mark.django_db, pytest.mark.recall_emulator(unruly=False)]


@pytest.fixture
def recorded(recall_emulator):
    """A calendar that records everything, with two meetings and their bots."""
    calendar = builders.recall_calendar(
        recall_emulator, "ada@acme.example", recording_policy=RecordingPolicy.ALL
    )
    builders.synced_events(recall_emulator, calendar, {}, {})
    assert len(recall_emulator.bots) == 2
    return calendar


def remote_bots(emulator) -> dict[str, list]:
    return {event_id: event["bots"] for event_id, event in emulator.events.items()}


def local_bots() -> dict[str, list]:
    return {str(row.recall_id): row.bots for row in CalendarEvent.objects.all()}


def test_a_disconnection_leaves_no_bot_shown_that_recall_dropped(recall_emulator, recorded):
    recall_emulator.disconnect_calendar(str(recorded.recall_id))

    assert local_bots() == remote_bots(recall_emulator) == {e: [] for e in recall_emulator.events}
    for event in CalendarEvent.objects.all():
        assert scheduling.bot_state(event)[0] != "scheduled"


def test_a_reconnection_brings_the_bots_back(recall_emulator, recorded):
    recall_emulator.disconnect_calendar(str(recorded.recall_id))

    recall_emulator.connect_calendar(str(recorded.recall_id))

    assert len(recall_emulator.bots) == 2
    assert all(len(bots) == 1 for bots in remote_bots(recall_emulator).values())
    assert local_bots() == remote_bots(recall_emulator)


def test_a_bot_scheduled_before_the_disconnection_was_known_is_removed(recall_emulator, recorded):
    target = recall_emulator.webhook_url
    recall_emulator.webhook_url = None  # the disconnection's webhook is late
    recall_emulator.disconnect_calendar(str(recorded.recall_id))
    [late] = [d for d in recall_emulator.deliveries if d.event == "calendar.update"][-1:]
    recall_emulator.add_event(str(recorded.recall_id))
    sync_changes(recorded)  # still connected here: the new meeting gets a bot at Recall
    assert recall_emulator.bots

    recall_emulator.webhook_url = target or DjangoClientDelivery()
    recall_emulator.redeliver(late)

    assert recall_emulator.bots == {}
    assert local_bots() == remote_bots(recall_emulator)
