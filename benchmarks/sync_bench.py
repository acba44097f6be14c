"""Event sync: 10,000 events from the emulator into the database.

Compared in the same run with
- a naive sync: the same pages fetched with the same client, then one ``update_or_create`` per
  event (what a first implementation usually does);
- for the database part alone (pages already fetched): a raw ``bulk_create`` of the very rows the
  sync wrote, without conflict handling, into an empty table, one transaction per page of 100 as the
  sync commits (the practical limit of any upsert).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import transaction

from django_recall_calendar import sync
from django_recall_calendar.client import RecallClient
from django_recall_calendar.models import Calendar, CalendarEvent

from .harness import emulator, make_calendar, timed
from .table import print_goal, print_table

EVENTS = 10_000
PAGE = 100


class FetchedPages:
    """A stand-in for the client that hands out pages fetched beforehand: times only the DB part."""

    def __init__(self, pages: list[list[dict]]) -> None:
        self.pages = pages

    def iter_calendar_event_pages(self, **filters: Any) -> Iterator[list[dict]]:
        return iter(self.pages)


def naive_sync(calendar: Calendar, client: RecallClient) -> int:
    """The baseline: same pages, same conversion, one ``update_or_create`` per event."""
    count = 0
    for page in client.iter_calendar_event_pages(calendar_id=str(calendar.recall_id)):
        for recall_id, event in sync._by_id(page).items():
            row = sync._event_row(recall_id, event, calendar)
            defaults = {name: getattr(row, name) for name in sync.EVENT_UPDATE_FIELDS}
            CalendarEvent.objects.update_or_create(recall_id=recall_id, defaults=defaults)
            count += 1
    return count


def raw_insert(rows: list[CalendarEvent]) -> None:
    for start in range(0, len(rows), PAGE):
        with transaction.atomic():
            CalendarEvent.objects.bulk_create(rows[start : start + PAGE])


def empty_table() -> None:
    CalendarEvent.objects.all().delete()


def run(database: str) -> None:
    with emulator() as running:
        calendar = make_calendar(running)
        running.add_events(str(calendar.recall_id), EVENTS, notify=False)
        client = RecallClient.from_settings()
        warm = next(iter(client.iter_calendar_event_pages(calendar_id=str(calendar.recall_id))))
        assert len(warm) == PAGE

        def app_sync() -> sync.SyncResult:
            return sync.sync_events(calendar, full=True, client=client)

        empty_table()
        app_new = timed(app_sync)
        empty_table()
        naive_new = timed(lambda: naive_sync(calendar, client))
        assert CalendarEvent.objects.count() == EVENTS

        pages = list(client.iter_calendar_event_pages(calendar_id=str(calendar.recall_id)))
        empty_table()
        db_part = timed(lambda: sync.sync_events(calendar, full=True, client=FetchedPages(pages)))
        rows = list(CalendarEvent.objects.order_by("pk"))
        for row in rows:
            row.pk = None
        empty_table()
        raw = timed(lambda: raw_insert(rows))
        assert CalendarEvent.objects.count() == EVENTS
        client.close()

    def row(name: str, measured: tuple[float, Any, int]) -> list[object]:
        seconds, _, statements = measured
        return [name, seconds, EVENTS / seconds, statements]

    headers = ["run", "seconds", "events/s", "SQL statements"]
    print_table(
        f"Event sync, {EVENTS:,} events from the emulator into an empty table ({database})",
        headers,
        [
            row("sync_events", app_new),
            row("naive update_or_create", naive_new),
        ],
    )
    print_table(
        f"Database part alone, pages already fetched ({database})",
        headers,
        [
            row("sync_events (convert + upsert + policy)", db_part),
            row("raw bulk_create, no conflict handling", raw),
        ],
    )
    speedup = naive_new[0] / app_new[0]
    fewer = naive_new[2] / app_new[2]
    print(f"sync_events vs naive: {speedup:.1f}x faster, {fewer:.0f}x fewer SQL statements.")
    slower = db_part[0] / raw[0]
    print(f"Database part: {slower:.2f}x the time of the raw bulk insert.")
    print_goal(
        f"sync vs naive ({database})",
        ">= 10x the naive baseline",
        speedup >= 10,
        f"{speedup:.1f}x",
    )
    print_goal(
        f"sync DB part vs raw insert ({database})",
        "within 2x of the raw bulk insert",
        slower <= 2,
        f"{slower:.2f}x",
    )
