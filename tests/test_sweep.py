"""Workspace sweeps: the waiting ``calendar.sync_events`` deliveries of many calendars are served by
one listing of the workspace's events, one sweep at a time, each delivery exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_recall_calendar import leases, tasks, webhooks
from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    DeliveryStatus,
    RecordingPolicy,
    WebhookDelivery,
)
from django_recall_calendar.utils import parse_datetime_or_none
from tests import builders
from tests.test_sync import assert_mirrors

pytestmark = [
    pytest.mark.recall_emulator(webhooks=False, unruly=False),
    pytest.mark.django_db,
]

LISTINGS = ("GET", "/api/v2/calendar-events/")


@pytest.fixture
def queued(settings):
    """Tasks recorded, not run: the test decides which delivery a worker picks up first."""
    settings.TASKS = {
        **settings.TASKS,
        "queued": {"BACKEND": f"{settings.TASKS_MODULE}.backends.dummy.DummyBackend"},
    }
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "TASK_BACKEND": "queued"}


def waiting(emulator, calendar_ids: set[str] | None = None) -> list[WebhookDelivery]:
    """The emulator's ``sync_events`` webhooks stored as received, as the endpoint stores them."""
    stored = []
    for sent in emulator.deliveries:
        data = sent.payload["data"]
        if sent.event != webhooks.CALENDAR_SYNC_EVENTS:
            continue
        if calendar_ids is not None and data["calendar_id"] not in calendar_ids:
            continue
        stored.append(
            builders.delivery(
                None,
                status=DeliveryStatus.RECEIVED,
                message_id=sent.id,
                payload=sent.payload,
                calendar_recall_id=data["calendar_id"],
            )
        )
    for delivery in stored:  # linked as the endpoint's insert links them
        delivery.calendar = webhooks._find_calendar(delivery.calendar_recall_id)
        delivery.save(update_fields=["calendar"])
    return stored


def calendars_with_events(emulator, count: int, **fields):
    made = []
    for index in range(count):
        calendar = builders.recall_calendar(emulator, f"user{index}@example.com", **fields)
        emulator.add_events(str(calendar.recall_id), 2)
        made.append(calendar)
    return made


def test_many_waiting_calendars_are_served_by_one_listing(recall_emulator, queued):
    calendars = calendars_with_events(recall_emulator, 6, recording_policy=RecordingPolicy.ALL)
    stranger = recall_emulator.create_calendar("google_calendar", oauth_email="x@elsewhere.com")
    recall_emulator.connect_calendar(stranger["id"])
    recall_emulator.add_events(stranger["id"], 3)  # a calendar of another app in the workspace
    deliveries = waiting(recall_emulator)
    assert len(deliveries) == 7
    for delivery in deliveries:  # synced up to their change: the watermarks may move on
        stamp = parse_datetime_or_none(delivery.payload["data"]["last_updated_ts"])
        Calendar.objects.filter(pk=delivery.calendar_id).update(events_synced_until=stamp)
    before = len(recall_emulator.requests_for(*LISTINGS))

    tasks.run_delivery(deliveries[0].pk)

    listings = recall_emulator.requests_for(*LISTINGS)[before:]
    assert len(listings) == 1  # one page holds every change
    assert "calendar_id" not in listings[0].query
    earliest = min(parse_datetime_or_none(d.payload["data"]["last_updated_ts"]) for d in deliveries)
    assert parse_datetime_or_none(listings[0].query["updated_at__gte"]) == earliest
    statuses = dict(WebhookDelivery.objects.values_list("message_id", "status"))
    stranger_delivery = next(d for d in deliveries if d.calendar_recall_id == stranger["id"])
    assert statuses.pop(stranger_delivery.message_id) == DeliveryStatus.IGNORED
    assert set(statuses.values()) == {DeliveryStatus.PROCESSED}
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}
    # The app's calendars mirror Recall; the stranger's events were skipped.
    remote = recall_emulator.events
    for calendar in calendars:
        mine = {e["id"] for e in remote.values() if e["calendar_id"] == str(calendar.recall_id)}
        assert {str(i) for i in calendar.events.values_list("recall_id", flat=True)} == mine
        calendar.refresh_from_db()
        newest = max(parse_datetime_or_none(remote[i]["updated_at"]) for i in mine)
        assert calendar.events_synced_until >= newest
    assert CalendarEvent.objects.count() == 12
    # Each page's meetings were handed to the workers in batches, soonest first, as tasks...
    handed = [r for r in tasks._task_backends["queued"].results if r.args and r.args[0]]
    assert all(r.task.func is tasks.reconcile_bots.func for r in handed)
    batches = [r.args[0] for r in handed]
    assert sorted(pk for batch in batches for pk in batch) == sorted(
        CalendarEvent.objects.values_list("pk", flat=True)
    )
    starts = [CalendarEvent.objects.get(pk=pk).start_time for batch in batches for pk in batch]
    assert starts == sorted(starts)
    # ... which send every new meeting its bot.
    for batch in batches:
        tasks.reconcile_bots.call(batch)
    remote = recall_emulator.events
    assert all(remote[str(e.recall_id)]["bots"] for e in CalendarEvent.objects.all())


def test_a_single_waiting_calendar_gets_its_own_listing(recall_emulator, queued):
    [calendar] = calendars_with_events(recall_emulator, 1)
    [delivery] = waiting(recall_emulator)
    before = len(recall_emulator.requests_for(*LISTINGS))

    assert tasks.run_delivery(delivery.pk) == DeliveryStatus.PROCESSED

    [listing] = recall_emulator.requests_for(*LISTINGS)[before:]
    assert listing.query["calendar_id"] == str(calendar.recall_id)
    assert calendar.events.count() == 2


def test_a_delivery_finding_a_sweep_in_flight_is_served_by_that_sweeper(recall_emulator, queued):
    """It is handed back untouched; the sweeper looks again once its sweep is done and serves
    it together with what arrived meanwhile: still one listing, each delivery once."""
    calendars = calendars_with_events(recall_emulator, 3)
    first, *later = waiting(recall_emulator)
    before = len(recall_emulator.requests_for(*LISTINGS))
    held = leases.acquire(leases.SWEEP, timedelta(minutes=5))  # another worker's sweep

    assert tasks.run_delivery(first.pk) == DeliveryStatus.RECEIVED

    first.refresh_from_db()
    assert (first.attempts, first.claimed_at, first.next_attempt_at) == (0, None, None)
    assert len(recall_emulator.requests_for(*LISTINGS)) == before  # no call made
    assert tasks._task_backends["queued"].results == []  # nothing re-enqueued: the sweeper has it
    held.release()

    tasks.run_delivery(later[0].pk)  # the next worker to sweep takes every waiting one

    assert len(recall_emulator.requests_for(*LISTINGS)) == before + 1
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"processed"}
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}
    assert sum(c.events.count() for c in calendars) == 6


def test_a_sweep_whose_listing_budget_is_spent_defers_every_delivery_it_claimed(
    recall_emulator, queued, settings
):
    calendars_with_events(recall_emulator, 3)
    deliveries = waiting(recall_emulator)
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "RATE_LIMITS": {"event_listings": "1/1h"},
    }
    from django_recall_calendar.client import RecallClient

    list(RecallClient.from_settings().list_calendar_events())  # the hour's only listing

    assert tasks.run_delivery(deliveries[0].pk) == DeliveryStatus.RECEIVED

    rows = WebhookDelivery.objects.all()
    assert {(d.status, d.attempts) for d in rows} == {(DeliveryStatus.RECEIVED, 0)}
    assert all(d.next_attempt_at > timezone.now() + timedelta(minutes=59) for d in rows)
    [retry] = tasks._task_backends["queued"].results
    assert retry.args == [deliveries[0].pk]
    assert leases.acquire(leases.SWEEP, timedelta(seconds=1)) is not None  # the lease is free


@pytest.mark.recall_emulator(unruly=True, page_size=4)
def test_a_sweep_failing_midway_keeps_its_pages_and_its_retry_brings_the_rest(
    recall_emulator, queued
):
    """Pages in no order, the third refused past every retry: the first two stay applied, and
    the deliveries' retry, a sweep from the same moment again, brings the rest."""
    calendars_with_events(recall_emulator, 6)
    deliveries = waiting(recall_emulator)
    recall_emulator.inject_fault("503", count=50, path=LISTINGS[1], after=2)

    assert tasks.run_delivery(deliveries[0].pk) == DeliveryStatus.FAILED

    assert CalendarEvent.objects.count() == 8
    rows = WebhookDelivery.objects.all()
    assert {(d.status, d.attempts) for d in rows} == {(DeliveryStatus.FAILED, 1)}
    recall_emulator.clear_faults()
    rows.update(next_attempt_at=timezone.now())  # the retry delay has passed

    tasks.retry_due()

    assert {(d.status, d.attempts) for d in rows} == {(DeliveryStatus.PROCESSED, 2)}
    assert_mirrors(recall_emulator)
