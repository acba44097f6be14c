"""Copies and bursts of deliveries racing on several workers (threads hitting the real view).

PostgreSQL only: SQLite serialises writers, so it cannot show the races these tests are about.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from django_recall_calendar.models import Calendar, CalendarEvent, DeliveryStatus, WebhookDelivery
from django_recall_calendar.utils import parse_datetime_or_none
from tests import builders

THREADS = 8

pytestmark = [
    pytest.mark.postgres(reason="races between workers need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def in_threads(jobs: list[Callable[[], int]]) -> list[int]:
    """Run the jobs in parallel threads released together; each closes its own DB connection."""
    barrier = threading.Barrier(len(jobs))
    results: list[int | BaseException] = [0] * len(jobs)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = jobs[index]()
        except BaseException as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, errors
    return results


def poster(body: bytes, headers: dict[str, str]) -> Callable[[], int]:
    url = reverse("recall_calendar:webhook")

    def post() -> int:
        response = Client().post(url, data=body, content_type="application/json", headers=headers)
        return response.status_code

    return post


@pytest.fixture
def calendar(recall_emulator) -> Calendar:
    return builders.recall_calendar(recall_emulator, "ada@example.com", connect=False)


def test_copies_of_one_delivery_make_one_row_and_one_processing(recall_emulator, calendar):
    body = json.dumps(
        {"event": "calendar.update", "data": {"calendar_id": str(calendar.recall_id)}}
    ).encode()
    headers = recall_emulator.signed_headers(body, message_id=f"msg_{uuid.uuid4().hex}")
    reads_before = len(recall_emulator.requests_for("GET", "/api/v2/calendars/"))

    statuses = in_threads([poster(body, headers) for _ in range(THREADS)])

    assert statuses == [200] * THREADS
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PROCESSED, 1)
    assert len(recall_emulator.requests_for("GET", "/api/v2/calendars/")) == reads_before + 1


@pytest.mark.recall_emulator(webhooks=False)  # record the burst now, post it from threads below
def test_a_burst_for_one_calendar_leaves_the_rows_equal_to_recall(recall_emulator, calendar):
    calendar_id = str(calendar.recall_id)
    events = recall_emulator.add_events(calendar_id, 30)
    for event in events[:3]:
        recall_emulator.update_event(event["id"], title="Moved", start_time=event["end_time"])
    for event in events[3:5]:
        recall_emulator.delete_event(event["id"])
    recall_emulator.add_event(calendar_id)
    recall_emulator.add_event(calendar_id)
    burst = recall_emulator.deliveries
    assert len(burst) == THREADS

    statuses = in_threads([poster(delivery.body, delivery.headers) for delivery in burst])

    assert statuses == [200] * THREADS
    assert WebhookDelivery.objects.count() == THREADS
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.PROCESSED).exists()
    remote = {
        uuid.UUID(event["id"]): (
            parse_datetime_or_none(event["start_time"]),
            parse_datetime_or_none(event["updated_at"]),
            event["is_deleted"],
        )
        for event in recall_emulator.events.values()
    }
    local = {
        row.recall_id: (row.start_time, row.recall_updated_at, row.is_deleted)
        for row in CalendarEvent.objects.filter(calendar=calendar)
    }
    assert local == remote
