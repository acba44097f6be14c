"""Event sync against the emulator over HTTP: mirroring, increments, moves, counts, signals."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from itertools import pairwise

import pytest
from django.db import connection
from django.utils.dateparse import parse_datetime

from django_recall_calendar import signals
from django_recall_calendar.client import RecallClient
from django_recall_calendar.event_fields import derive_fields
from django_recall_calendar.models import CalendarEvent
from django_recall_calendar.sync import sync_events
from tests import builders

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]

#: SQL statements one page may cost: savepoint, stored-versions read, upsert (one statement on
#: both databases since the upsert is written by hand), watermark update, release. A page with
#: events of other calendars adds one read of them.
PER_PAGE_QUERIES = 5


@pytest.fixture
def received():
    """Every ``events_synced`` sent during the test, as its kwargs."""
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append({**kwargs, "events": sorted(str(e.recall_id) for e in kwargs["events"])})

    signals.events_synced.connect(receiver, weak=False)
    yield calls
    signals.events_synced.disconnect(receiver)


def assert_mirrors(emulator) -> None:
    """Every event the emulator holds has a row equal to it, field by field, and nothing else."""
    remote = emulator.events
    rows = {str(row.recall_id): row for row in CalendarEvent.objects.select_related("calendar")}
    assert set(rows) == set(remote)
    for recall_id, event in remote.items():
        row = rows[recall_id]
        assert str(row.calendar.recall_id) == event["calendar_id"]
        assert row.start_time == parse_datetime(event["start_time"])
        assert row.end_time == parse_datetime(event["end_time"])
        assert row.recall_created_at == parse_datetime(event["created_at"])
        assert row.recall_updated_at == parse_datetime(event["updated_at"])
        for name in ("meeting_url", "meeting_platform", "platform", "platform_id", "ical_uid"):
            assert getattr(row, name) == event[name], name
        assert row.is_deleted is event["is_deleted"]
        assert row.bots == event["bots"]
        assert row.raw == event["raw"]
        derived = derive_fields(
            event["raw"], platform=event["platform"], owner_email=row.calendar.email
        )
        for name, value in derived.items():
            assert getattr(row, name) == value, name


def test_full_then_incremental_sync_mirrors_changes_deletions_and_moves(recall_emulator, received):
    calendar = builders.recall_calendar(recall_emulator)
    other = builders.recall_calendar(recall_emulator, "other@example.com", "microsoft_outlook")
    events = recall_emulator.add_events(str(calendar.recall_id), 1000, notify=False)

    first = sync_events(calendar)

    assert (first.created, first.updated, first.deleted, first.pages) == (1000, 0, 0, 10)
    assert len(first.changed_ids) == 1000
    assert_mirrors(recall_emulator)
    calendar.refresh_from_db()
    newest = max(parse_datetime(e["updated_at"]) for e in events)
    # Unruly, the pages come in no order: the watermark stops at the newest change, or a second
    # before Recall answered the first page if that is earlier (``PageOrder.settled``).
    watermark = calendar.events_synced_until
    assert watermark is not None and watermark <= newest
    assert calendar.last_synced_at is not None
    assert received[0]["created"] == 1000 and len(received[0]["events"]) == 1000

    changed = [
        recall_emulator.update_event(
            e["id"],
            title="Changed",
            meeting_url=None,
            start_time=e["end_time"],
            end_time=parse_datetime(e["end_time"]) + timedelta(minutes=45),
        )
        for e in events[10:15]
    ]
    deleted = [recall_emulator.delete_event(e["id"]) for e in events[20:23]]
    moved = [recall_emulator.move_event(e["id"], str(other.recall_id)) for e in events[30:32]]
    new = recall_emulator.add_event(str(calendar.recall_id), title="New one")
    requests_before = len(recall_emulator.requests_for("GET", "/calendar-events/"))

    second = sync_events(calendar)
    moved_in = sync_events(other)

    listing = recall_emulator.requests_for("GET", "/calendar-events/")[requests_before]
    assert parse_datetime(listing.query["updated_at__gte"]) == watermark
    assert (second.created, second.updated, second.deleted) == (1, 5, 3)
    assert sorted(map(str, second.changed_ids)) == sorted(
        e["id"] for e in [*changed, *deleted, new]
    )
    assert (moved_in.created, moved_in.updated, moved_in.deleted) == (0, 2, 0)
    assert_mirrors(recall_emulator)
    assert CalendarEvent.objects.filter(calendar=other).count() == 2
    assert CalendarEvent.objects.filter(is_deleted=True).count() == 3
    assert CalendarEvent.objects.get(recall_id=changed[0]["id"]).meeting_url is None
    assert received[1]["calendar"] == calendar
    assert (received[1]["created"], received[1]["updated"], received[1]["deleted"]) == (1, 5, 3)
    assert received[2]["events"] == sorted(e["id"] for e in moved)


def test_sql_statements_per_page_are_constant_for_1000_events(
    recall_emulator, django_assert_max_num_queries
):
    calendar = builders.recall_calendar(recall_emulator)
    recall_emulator.add_events(str(calendar.recall_id), 1000, notify=False)
    marks: list[int] = []

    with django_assert_max_num_queries(10 * PER_PAGE_QUERIES + 10) as queries:
        result = sync_events(calendar, on_page=lambda result, changed: marks.append(len(queries)))

    assert result.pages == 10
    per_page = [after - before for before, after in pairwise(marks)]
    assert len(set(per_page)) == 1, per_page
    assert per_page[0] <= PER_PAGE_QUERIES


@contextmanager
def sqlite_variable_limit(limit: int) -> Iterator[None]:
    """SQLite's limit of variables per statement lowered on the test's connection (a no-op on
    PostgreSQL): a sync past the default 32,766 would need 33,000 events."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    default = connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    try:
        yield
    finally:
        connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, default)


def test_hosts_receive_every_changed_event_of_a_sync_past_sqlites_variable_limit(
    recall_emulator, received
):
    """More changed events than one SQLite statement takes variables: ``events_synced`` still
    names every row (its query takes the ids as one parameter), and each page's upsert is split
    into statements that fit."""
    calendar = builders.recall_calendar(recall_emulator)
    events = recall_emulator.add_events(str(calendar.recall_id), 1200, notify=False)

    with sqlite_variable_limit(999):
        result = sync_events(calendar)

    assert result.created == 1200
    assert received[-1]["events"] == sorted(event["id"] for event in events)
    assert_mirrors(recall_emulator)


def test_unchanged_resync_changes_nothing_and_sends_no_signal(recall_emulator, received):
    calendar = builders.recall_calendar(recall_emulator)
    recall_emulator.add_events(str(calendar.recall_id), 5, notify=False)
    sync_events(calendar)

    again = sync_events(calendar, full=True)

    assert (again.created, again.updated, again.deleted, again.changed_ids) == (0, 0, 0, [])
    assert again.received == 5
    assert len(received) == 1


def test_local_choices_survive_a_sync(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    event = recall_emulator.add_event(str(calendar.recall_id))
    sync_events(calendar)
    CalendarEvent.objects.filter(recall_id=event["id"]).update(
        record_override="never", bot_config={"bot_name": "Mine"}
    )
    recall_emulator.update_event(event["id"], title="Renamed")

    sync_events(calendar)

    row = CalendarEvent.objects.get(recall_id=event["id"])
    assert row.title == "Renamed"
    assert (row.record_override, row.bot_config) == ("never", {"bot_name": "Mine"})


def test_null_and_missing_optional_fields_are_tolerated(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "owner@example.com", "microsoft_outlook")
    bare = recall_emulator.add_event(
        str(calendar.recall_id), meeting_url=None, meeting_platform=None, raw={"subject": "Bare"}
    )
    no_guests = recall_emulator.add_event(str(calendar.recall_id), attendees=[])

    result = sync_events(calendar)

    assert result.created == 2
    row = CalendarEvent.objects.get(recall_id=bare["id"])
    assert (row.meeting_url, row.meeting_platform, row.title) == (None, None, "Bare")
    assert row.attendees == [] and row.organizer_email == ""
    assert CalendarEvent.objects.get(recall_id=no_guests["id"]).attendees == []


def test_events_listed_under_other_calendars_go_to_known_ones_and_stay_otherwise(recall_emulator):
    """Recall may list an event under another calendar id: a known calendar takes it over,
    an unknown id leaves it with the calendar being synced."""
    calendar, other = (
        builders.recall_calendar(recall_emulator),
        builders.recall_calendar(recall_emulator, "second@example.com"),
    )
    stranger = recall_emulator.create_calendar()["id"]
    own = recall_emulator.add_event(str(calendar.recall_id))
    theirs = recall_emulator.add_event(str(other.recall_id))
    unknown = recall_emulator.add_event(stranger)

    class UnfilteredRecall(RecallClient):
        """Recall answering a listing with events of every calendar of the workspace."""

        def iter_calendar_event_pages(self, **filters):
            filters.pop("calendar_id")
            return super().iter_calendar_event_pages(**filters)

    sync_events(calendar, client=UnfilteredRecall.from_settings())

    owner = dict(CalendarEvent.objects.values_list("recall_id", "calendar__recall_id"))
    assert {str(k): str(v) for k, v in owner.items()} == {
        own["id"]: str(calendar.recall_id),
        theirs["id"]: str(other.recall_id),
        unknown["id"]: str(calendar.recall_id),
    }


def test_updated_since_as_iso_text_reads_only_later_events(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    older, newer = recall_emulator.add_events(str(calendar.recall_id), 2, notify=False)

    result = sync_events(calendar, newer["updated_at"])

    assert [str(i) for i in result.changed_ids] == [newer["id"]]
    assert not CalendarEvent.objects.filter(recall_id=older["id"]).exists()


def test_bad_updated_since_is_refused(recall_emulator):
    with pytest.raises(ValueError, match="not an ISO 8601"):
        sync_events(builders.recall_calendar(recall_emulator), "yesterday")


def test_sync_works_for_a_calendar_with_no_events(recall_emulator, received):
    calendar = builders.recall_calendar(recall_emulator)
    result = sync_events(calendar)
    calendar.refresh_from_db()
    assert (result.pages, result.received, result.changed) == (1, 0, 0)
    assert calendar.events_synced_until is None
    assert calendar.last_synced_at is not None
    assert received == []


def test_secrets_never_reach_stored_raw(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator)
    recall_emulator.add_event(
        str(calendar.recall_id),
        raw={"summary": "Leaky", "oauth_client_secret": "s3cr3t", "oauth_refresh_token": "r3fr3sh"},
    )
    sync_events(calendar)
    stored = repr(list(CalendarEvent.objects.values_list("raw", flat=True)))
    assert "s3cr3t" not in stored and "r3fr3sh" not in stored


def test_provider_ids_longer_than_their_columns_are_cut_not_failing_the_page(recall_emulator):
    """Recall bounds neither ``ical_uid`` nor ``platform_id`` (an invite imported from another
    system may carry any UID) nor, in the future, its meeting platform names; PostgreSQL refused
    the whole page, on every retry."""
    calendar = builders.recall_calendar(recall_emulator)
    long_uid, long_id = "u" * 1500 + "@example.com", "p" * 1100
    new_platform = "microsoft_teams_live_broadcast_v2_beta"  # longer than the column's 32
    long_title, long_series = "t" * 5000, "s" * 1500
    event = recall_emulator.add_event(
        str(calendar.recall_id),
        ical_uid=long_uid,
        platform_id=long_id,
        raw={
            "summary": long_title,
            "recurringEventId": long_series,
            "organizer": {"email": "o" * 300 + "@example.com"},
        },
    )
    recall_emulator.update_event(event["id"], meeting_platform=new_platform)
    other = recall_emulator.add_event(str(calendar.recall_id))

    result = sync_events(calendar)

    assert result.created == 2
    row = CalendarEvent.objects.get(recall_id=event["id"])
    assert (row.ical_uid, row.platform_id) == (long_uid[:1024], long_id[:1024])
    assert row.meeting_platform == new_platform[:32]
    assert (row.title, row.recurring_event_id) == (long_title[:1024], long_series[:1024])
    assert len(row.organizer_email) == 254
    assert CalendarEvent.objects.filter(recall_id=other["id"]).exists()
