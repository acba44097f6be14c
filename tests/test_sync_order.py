"""An older copy of an event never overwrites a newer one, whatever order pages and webhooks come.

Recall does not promise order: a listing page, a retried webhook or a sync started earlier can
bring a copy older than the one already stored. The row keeps the copy with the latest
``updated_at``. The newer copy is put in place first (as a sync that saw a later version would
have left it), then the emulator's older one arrives.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.dateparse import parse_datetime

from django_recall_calendar import event_rows, sync
from django_recall_calendar.models import CalendarEvent, DeliveryStatus, WebhookDelivery
from tests import builders

pytestmark = pytest.mark.django_db
quiet = pytest.mark.recall_emulator(webhooks=False)  # the test syncs when it means to


def newer_copy_stored(event: dict) -> CalendarEvent:
    """The event's row as a copy one hour newer than the emulator's would leave it."""
    newer_at = parse_datetime(event["updated_at"]) + timedelta(hours=1)
    CalendarEvent.objects.filter(recall_id=event["id"]).update(
        title="the newer title",
        meeting_url="https://meet.example.com/newer",
        recall_updated_at=newer_at,
    )
    return CalendarEvent.objects.get(recall_id=event["id"])


def assert_unchanged(row: CalendarEvent) -> None:
    again = CalendarEvent.objects.get(pk=row.pk)
    assert (again.title, again.meeting_url, again.recall_updated_at) == (
        row.title,
        row.meeting_url,
        row.recall_updated_at,
    )


@quiet
def test_an_older_copy_on_a_sync_page_is_skipped(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    event, other = recall_emulator.add_events(str(calendar.recall_id), 2, notify=False)
    sync.sync_events(calendar)
    row = newer_copy_stored(event)
    recall_emulator.update_event(other["id"], meeting_url="https://meet.example.com/moved")

    result = sync.sync_events(calendar, full=True)

    assert_unchanged(row)
    assert [str(i) for i in result.changed_ids] == [other["id"]]
    assert (result.created, result.updated) == (0, 1)
    moved = CalendarEvent.objects.get(recall_id=other["id"])
    assert moved.meeting_url == "https://meet.example.com/moved"


def test_an_older_copy_brought_by_a_webhook_triggered_sync_is_skipped(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    [event] = recall_emulator.add_events(str(calendar.recall_id), 1, notify=False)
    sync.sync_events(calendar)
    row = newer_copy_stored(event)
    WebhookDelivery.objects.all().delete()  # the connection's calendar.update

    delivery = recall_emulator.send_sync_events(
        str(calendar.recall_id), last_updated_ts=event["created_at"]
    )

    assert delivery.status == 200
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert_unchanged(row)


@quiet
def test_the_upsert_itself_keeps_a_newer_row(recall_emulator):
    """The write's own guard, for a sync that stored a newer copy between a page's read of the
    stored versions and its write: the older row is not applied."""
    calendar = builders.recall_calendar(recall_emulator)
    [event] = recall_emulator.add_events(str(calendar.recall_id), 1, notify=False)
    sync.sync_events(calendar)
    row = newer_copy_stored(event)
    older = event_rows.event_row(
        row.recall_id, event, calendar, parse_datetime(event["updated_at"])
    )

    event_rows.upsert([older])

    assert_unchanged(row)


@quiet
def test_a_copy_as_new_as_the_stored_one_is_not_rewritten(
    recall_emulator, django_assert_num_queries
):
    """A re-sync recognises unchanged events from one read per page and writes nothing."""
    calendar = builders.recall_calendar(recall_emulator)
    recall_emulator.add_events(str(calendar.recall_id), 3, notify=False)
    sync.sync_events(calendar)

    # The watermark read; the page's savepoint, its read of the stored versions, the conditional
    # watermark update and the release; the last-synced time. No write of any event.
    with django_assert_num_queries(6):
        result = sync.sync_events(calendar, full=True)

    assert (result.changed, result.received) == (0, 3)
