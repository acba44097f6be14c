"""A storm: 300 deliveries, each sent three times, shuffled, posted by 8 threads at once.

PostgreSQL only: SQLite serialises writers, so it cannot race. Each delivery must be stored once
and processed once (its row's ``attempts`` is 1; every ``calendar.update`` re-reads its calendar
exactly once at the emulator), and the rows must end equal to Recall's events and calendars.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from django_recall_calendar.models import Calendar, DeliveryStatus, WebhookDelivery
from django_recall_calendar.testing import Delivery
from tests import builders
from tests.test_sync import assert_mirrors

pytestmark = [
    pytest.mark.postgres(reason="racing workers need PostgreSQL (SQLite serialises writers)"),
    pytest.mark.django_db(transaction=True),
    # The storm is recorded, then posted by threads. It tests exactly-once under racing workers,
    # not pacing: Recall's 60 listings a minute would refuse most of its 300 syncs.
    pytest.mark.recall_emulator(webhooks=False, rate_limits=False),
]

THREADS = 8
CALENDARS = 10
COPIES = 3


def make_storm(emulator) -> list[Delivery]:
    """300 recorded deliveries: per calendar, 20 ``sync_events`` and 10 ``calendar.update``."""
    user = builders.user("storm")
    for index in range(CALENDARS):
        calendar = builders.recall_calendar(
            emulator, f"user{index}@example.com", owner=user, connect=False
        )
        calendar_id = str(calendar.recall_id)
        emulator.connect_calendar(calendar_id)  # a calendar.update
        events = [emulator.add_event(calendar_id) for _ in range(12)]
        for event in events[:5]:
            emulator.update_event(event["id"], title="Renamed", meeting_url=None)
        for event in events[5:8]:
            emulator.delete_event(event["id"])
        for _ in range(9):
            emulator.send_calendar_update(calendar_id)
    return emulator.deliveries


def post_all(copies: list[Delivery]) -> Counter:
    """Post the copies from THREADS threads released together; returns the status counts."""
    url = reverse("recall_calendar:webhook")
    barrier = threading.Barrier(THREADS)
    statuses: Counter = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(share: list[Delivery]) -> None:
        client = Client()
        try:
            barrier.wait()
            for delivery in share:
                response = client.post(
                    url,
                    data=delivery.body,
                    content_type="application/json",
                    headers={k: v for k, v in delivery.headers.items() if k != "content-type"},
                )
                with lock:
                    statuses[response.status_code] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(copies[index::THREADS],)) for index in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return statuses


def test_a_storm_of_copies_is_stored_and_processed_once(recall_emulator):
    storm = make_storm(recall_emulator)
    kinds = Counter(delivery.event for delivery in storm)
    assert kinds == {"calendar.sync_events": 200, "calendar.update": 100}
    copies = [delivery for delivery in storm for _ in range(COPIES)]
    random.Random(9).shuffle(copies)
    reads_before = len(recall_emulator.requests_for("GET", "/api/v2/calendars/"))

    statuses = post_all(copies)

    assert statuses == {200: len(copies)}
    rows = WebhookDelivery.objects.all()
    assert sorted(rows.values_list("message_id", flat=True)) == sorted(d.id for d in storm)
    assert set(rows.values_list("status", "attempts")) == {(DeliveryStatus.PROCESSED, 1)}
    # calendar.update is never coalesced: one read of the calendar per delivery, not per copy.
    reads = len(recall_emulator.requests_for("GET", "/api/v2/calendars/")) - reads_before
    assert reads == kinds["calendar.update"]
    # sync_events deliveries of one calendar may share one sync, never cause more than one each.
    listings = len(recall_emulator.requests_for("GET", "/api/v2/calendar-events/"))
    assert 0 < listings <= kinds["calendar.sync_events"]
    assert_mirrors(recall_emulator)
    remote = recall_emulator.calendars
    for calendar in Calendar.objects.all():
        expected = remote[str(calendar.recall_id)]
        assert (calendar.status, calendar.platform_email) == (
            expected["status"],
            expected["platform_email"],
        )
