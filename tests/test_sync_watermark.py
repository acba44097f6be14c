"""The sync watermark: crash-safe per page, held when order is unknown, never past a gap or back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils.dateparse import parse_datetime

from django_recall_calendar import signals
from django_recall_calendar.client import RecallClient
from django_recall_calendar.exceptions import RecallServerError
from django_recall_calendar.models import Calendar, CalendarEvent
from django_recall_calendar.sync import sync_events, sync_workspace_events
from tests import builders
from tests.test_sync import assert_mirrors

EVENTS_PATH = "/api/v2/calendar-events/"

pytestmark = pytest.mark.recall_emulator(webhooks=False)  # each test syncs when it means to


def updated_at(event: dict):
    return parse_datetime(event["updated_at"])


def watermark(calendar: Calendar):
    return Calendar.objects.get(pk=calendar.pk).events_synced_until


@pytest.mark.django_db(transaction=True)
@pytest.mark.recall_emulator(unruly=False)
def test_failure_on_page_4_of_10_keeps_pages_1_to_3_and_the_next_sync_completes(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    events = recall_emulator.add_events(str(calendar.recall_id), 1000, notify=False)
    synced: list[dict] = []

    def receiver(sender, **kwargs):
        synced.append(kwargs)

    def fail_next_page(result, changed):
        if result.pages == 3:  # every retry of page 4 fails too
            recall_emulator.inject_fault("503", count=50, path=EVENTS_PATH)

    signals.events_synced.connect(receiver, weak=False)
    try:
        with pytest.raises(RecallServerError):
            sync_events(calendar, on_page=fail_next_page)
        recall_emulator.clear_faults()

        # Committed, not merely held in a transaction: pages 1-3 and their watermark.
        assert CalendarEvent.objects.count() == 300
        assert watermark(calendar) == updated_at(events[299])
        assert Calendar.objects.get(pk=calendar.pk).last_synced_at is None
        # What was applied still reaches the recording policy.
        assert synced[0]["created"] == 300 and synced[0]["events"].count() == 300

        before = len(recall_emulator.requests_for("GET", EVENTS_PATH))
        resumed = sync_events(calendar)
    finally:
        signals.events_synced.disconnect(receiver)

    first = recall_emulator.requests_for("GET", EVENTS_PATH)[before]
    assert parse_datetime(first.query["updated_at__gte"]) == updated_at(events[299])
    assert resumed.created == 700 and resumed.updated == 0
    assert CalendarEvent.objects.count() == 1000
    assert watermark(calendar) == updated_at(events[-1])


class DescendingRecall(RecallClient):
    """Recall listing newest first (its order is undocumented), optionally failing midway."""

    fail_after_pages: int | None = None

    def iter_calendar_event_pages(self, **filters):
        pages = [list(reversed(page)) for page in super().iter_calendar_event_pages(**filters)]
        for number, page in enumerate(reversed(pages)):
            if number == self.fail_after_pages:
                raise RecallServerError("Recall went away", status_code=503)
            yield page


@pytest.mark.django_db
def test_out_of_order_pages_hold_the_watermark_until_the_sync_completes(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    events = recall_emulator.add_events(str(calendar.recall_id), 300, notify=False)
    failing = DescendingRecall.from_settings()
    failing.fail_after_pages = 2

    with pytest.raises(RecallServerError):
        sync_events(calendar, client=failing)

    assert CalendarEvent.objects.count() == 200  # the 200 newest events are applied...
    assert watermark(calendar) is None  # ...but the 100 oldest are not, so nothing is claimed

    result = sync_events(calendar, client=DescendingRecall.from_settings())

    assert (result.created, result.pages) == (100, 3)
    # Moved now, to the newest change or, if that came less than a second before the listing
    # began, to a second before that (``PageOrder.settled``).
    assert watermark(calendar) is not None
    assert watermark(calendar) <= updated_at(events[-1])


@pytest.mark.django_db
def test_a_later_updated_since_leaves_a_gap_so_the_watermark_stays(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    recall_emulator.add_events(str(calendar.recall_id), 2, notify=False)
    sync_events(calendar)
    mark = watermark(calendar)
    missed, later = recall_emulator.add_events(str(calendar.recall_id), 2, notify=False)

    sync_events(calendar, later["updated_at"])

    assert watermark(calendar) == mark
    assert not CalendarEvent.objects.filter(recall_id=missed["id"]).exists()

    caught_up = sync_events(calendar)

    assert caught_up.created == 1  # the missed one; the later one is already here
    assert watermark(calendar) == updated_at(later)


@pytest.mark.django_db
def test_the_watermark_never_moves_backwards(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    event = recall_emulator.add_event(str(calendar.recall_id))
    ahead = updated_at(event) + timedelta(hours=1)
    Calendar.objects.filter(pk=calendar.pk).update(events_synced_until=ahead)

    result = sync_events(calendar, event["updated_at"])
    full = sync_events(calendar, full=True)

    assert result.created == 1 and full.changed == 0
    assert watermark(calendar) == ahead


@pytest.mark.django_db
def test_a_webhook_time_at_or_before_the_watermark_advances_it(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    first = recall_emulator.add_event(str(calendar.recall_id))
    sync_events(calendar)
    second = recall_emulator.add_event(str(calendar.recall_id))

    sync_events(calendar, first["updated_at"])

    assert watermark(calendar) == updated_at(second)


def newest_first(emulator, calendar: Calendar) -> list[dict]:
    """30 events, each with an id that sorts before those of the events created before it:
    Recall paging by id (unruly) lists the newest first, so the pages come in no order."""
    return [
        emulator.add_event(str(calendar.recall_id), id=f"{99 - n:08d}-0000-4000-8000-000000000000")
        for n in range(30)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.recall_emulator(unruly=True, page_size=10)
def test_pages_in_no_order_that_fail_midway_lose_nothing(recall_emulator):
    """Unruly, Recall pages by id: here the first page holds the newest events. A sync that fails
    after it must not claim them as a watermark, or the next sync would skip the older ones."""
    calendar = builders.recall_calendar(recall_emulator)
    events = newest_first(recall_emulator, calendar)

    def fail_after_first_page(result, changed):
        recall_emulator.inject_fault("503", count=50, path=EVENTS_PATH)

    with pytest.raises(RecallServerError):
        sync_events(calendar, on_page=fail_after_first_page)
    recall_emulator.clear_faults()
    assert set(CalendarEvent.objects.values_list("recall_id", flat=True)) == {
        uuid.UUID(event["id"]) for event in events[20:]
    }
    assert watermark(calendar) is None

    sync_events(calendar)

    assert CalendarEvent.objects.count() == 30
    assert watermark(calendar) is not None
    assert watermark(calendar) <= updated_at(events[-1])
    assert_mirrors(recall_emulator)


def sweep(calendar: Calendar, on_page=None):
    return sync_workspace_events({calendar: None}, on_page=on_page)


@pytest.mark.django_db(transaction=True)
@pytest.mark.recall_emulator(unruly=True, page_size=10)
@pytest.mark.parametrize("sync", [sync_events, sweep], ids=["calendar", "workspace sweep"])
def test_a_change_behind_the_cursor_is_not_skipped_by_a_later_one_ahead_of_it(
    recall_emulator, sync
):
    """Unruly, Recall pages by id. Between pages 1 and 2, event A (on page 1, already listed)
    changes, then B (on page 3) does: the listing brings B's change but not A's. The watermark
    must not pass A's change, or the next sync from it would skip A for good."""
    calendar = builders.recall_calendar(recall_emulator)
    events = newest_first(recall_emulator, calendar)  # page 1 holds the newest ten
    behind, ahead = events[25], events[5]

    def change_after_first_page(result, changed):
        if result.pages == 1:
            recall_emulator.update_event(behind["id"], title="Moved behind the cursor")
            recall_emulator.update_event(ahead["id"], title="Moved ahead of the cursor")

    sync(calendar, on_page=change_after_first_page)
    assert CalendarEvent.objects.get(recall_id=ahead["id"]).title == "Moved ahead of the cursor"

    sync(calendar)  # from the watermark, no webhook

    assert CalendarEvent.objects.get(recall_id=behind["id"]).title == "Moved behind the cursor"
    assert_mirrors(recall_emulator)
