"""Event sync: 10,000 events into the database, against floors measured in the same run.

The database part (pages already fetched, so Recall's HTTP is not timed) is compared with the
fastest ways this machine can write the very same rows, 100 per transaction as the sync commits:
- PostgreSQL: ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE`` (the floor for an
  upsert) and ``COPY`` (the floor for any ingest), both with psycopg directly;
- SQLite: ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE`` with the sqlite3 module, the
  values already in SQLite's text form (no COPY there).
A re-sync of the same, unchanged events is compared with the first sync. The whole sync, pages
fetched from the emulator over HTTP, is an extra line; so is the Python conversion of the events
alone (what the sync does before the database sees a row), the sync's own limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection

from django_recall_calendar import event_rows, sync
from django_recall_calendar.client import RecallClient
from django_recall_calendar.models import Calendar, CalendarEvent

from .harness import emulator, make_calendar, timed
from .table import print_goal, print_table

EVENTS = 10_000
PAGE = 100
#: Goals: the sync's database part within 1.5x of the upsert floor; a re-sync of unchanged events
#: at most 0.3x the cost of the first sync.
FLOOR_GOAL = 1.5
RESYNC_GOAL = 0.3


class FetchedPages:
    """A stand-in for the client that hands out pages fetched beforehand: times only the DB part."""

    def __init__(self, pages: list[list[dict]]) -> None:
        self.pages = pages

    def iter_calendar_event_pages(self, **filters: Any) -> Iterator[list[dict]]:
        return iter(self.pages)


def convert_only(calendar: Calendar, pages: list[list[dict]]) -> int:
    """What the sync does in Python before the database sees a page (the rows and the statement's
    parameters), without the database: the sync's own limit."""
    converted = 0
    for page in pages:
        rows = [
            event_rows.event_row(recall_id, event, calendar, sync._updated_at(event))
            for recall_id, event in sync._by_id(page).items()
        ]
        for _sql, _params in event_rows.statements(rows, connection):
            converted += len(rows)
    return converted


def empty_table() -> None:
    CalendarEvent.objects.all().delete()


def columns() -> list:
    """Every column of an event row but the primary key."""
    meta = CalendarEvent._meta
    return [field for field in meta.local_concrete_fields if field is not meta.pk]


def stored_rows() -> list[tuple]:
    """The rows the sync wrote, as Python values in column order."""
    return list(CalendarEvent.objects.order_by("pk").values_list(*[f.attname for f in columns()]))


def postgres_floors(rows: list[tuple]) -> dict[str, Callable[[], None]]:
    """The unnest upsert and COPY of ``rows``, 100 per transaction, on a psycopg connection."""
    import psycopg
    from psycopg.types.json import Jsonb

    fields = columns()
    table = CalendarEvent._meta.db_table
    names = ", ".join(f'"{field.column}"' for field in fields)
    types = [field.db_type(connection) for field in fields]
    jsons = [i for i, field in enumerate(fields) if field.get_internal_type() == "JSONField"]
    prepared = [
        tuple(Jsonb(value) if i in jsons else value for i, value in enumerate(row)) for row in rows
    ]
    updates = ", ".join(
        f'"{f.column}" = EXCLUDED."{f.column}"' for f in fields if f.name != "recall_id"
    )
    arrays = ", ".join(f"%s::{kind.split('(')[0]}[]" for kind in types)
    upsert = (
        f'INSERT INTO "{table}" ({names}) SELECT * FROM unnest({arrays}) '
        f'ON CONFLICT ("recall_id") DO UPDATE SET {updates}'
    )
    settings = connection.settings_dict

    def connect() -> Any:
        return psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"],
            user=settings["USER"],
            dbname=settings["NAME"],
        )

    def unnest() -> None:
        with connect() as raw:
            for start in range(0, len(prepared), PAGE):
                page = prepared[start : start + PAGE]
                with raw.transaction():
                    raw.execute(upsert, [list(column) for column in zip(*page, strict=True)])

    def copy() -> None:
        with connect() as raw:
            for start in range(0, len(prepared), PAGE):
                with (
                    raw.transaction(),
                    raw.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as writer,
                ):
                    for row in prepared[start : start + PAGE]:
                        writer.write_row(row)

    return {"unnest upsert (psycopg)": unnest, "COPY (psycopg)": copy}


def sqlite_floor(rows: list[tuple]) -> dict[str, Callable[[], None]]:
    """``executemany`` of a one-row upsert with sqlite3, 100 rows per transaction."""
    import sqlite3

    fields = columns()
    table = CalendarEvent._meta.db_table
    names = ", ".join(f'"{field.column}"' for field in fields)
    updates = ", ".join(
        f'"{f.column}" = excluded."{f.column}"' for f in fields if f.name != "recall_id"
    )
    sql = (
        f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(fields))}) '
        f'ON CONFLICT ("recall_id") DO UPDATE SET {updates}'
    )
    prepared = [
        tuple(
            json.dumps(value)
            if field.get_internal_type() == "JSONField"
            else field.get_db_prep_save(value, connection)
            for field, value in zip(fields, row, strict=True)
        )
        for row in rows
    ]

    def upsert() -> None:
        raw = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        try:
            for start in range(0, len(prepared), PAGE):
                raw.execute("BEGIN")
                raw.executemany(sql, prepared[start : start + PAGE])
                raw.execute("COMMIT")
        finally:
            raw.close()

    return {"executemany upsert (sqlite3)": upsert}


def run(database: str) -> None:
    with emulator() as running:
        calendar = make_calendar(running)
        running.add_events(str(calendar.recall_id), EVENTS, notify=False)
        client = RecallClient.from_settings()
        pages = list(client.iter_calendar_event_pages(calendar_id=str(calendar.recall_id)))
        assert sum(map(len, pages)) == EVENTS

        def app_sync() -> sync.SyncResult:
            return sync.sync_events(calendar, full=True, client=client)

        empty_table()
        over_http = timed(app_sync)
        client.close()
    fetched = FetchedPages(pages)

    def db_sync() -> sync.SyncResult:
        return sync.sync_events(calendar, full=True, client=fetched)

    conversion = timed(lambda: convert_only(calendar, pages))
    empty_table()
    Calendar.objects.filter(pk=calendar.pk).update(events_synced_until=None)
    first = timed(db_sync)
    assert first[1].created == EVENTS, first[1]
    again = timed(db_sync)  # as a full re-sync runs after that first one: watermark at the newest
    assert again[1].changed == 0, again[1]
    rows = stored_rows()
    floors = postgres_floors(rows) if database == "postgres" else sqlite_floor(rows)
    floor_times = {}
    for name, write in floors.items():
        empty_table()
        floor_times[name] = timed(write)
        assert CalendarEvent.objects.count() == EVENTS

    def row(name: str, measured: tuple[float, Any, int], statements: bool = True) -> list[object]:
        seconds, _, count = measured
        return [name, seconds, EVENTS / seconds, count if statements else "-"]

    print_table(
        f"Event sync, {EVENTS:,} events, 100 per page and transaction ({database})",
        ["run", "seconds", "events/s", "SQL statements"],
        [
            row("sync_events, pages over HTTP from the emulator (extra)", over_http),
            row("sync_events, database part: first sync", first),
            row("  of which converting the events alone (no database)", conversion),
            row("sync_events, database part: re-sync, nothing changed", again),
            *(row(f"floor: {name}", measured, False) for name, measured in floor_times.items()),
        ],
    )
    upsert_floor = next(iter(floor_times.values()))[0]
    ratio, resync = first[0] / upsert_floor, again[0] / first[0]
    print_goal(
        f"sync database part vs upsert floor ({database})",
        f"within {FLOOR_GOAL}x of the floor",
        ratio <= FLOOR_GOAL,
        f"{ratio:.2f}x ({EVENTS / first[0]:,.0f} vs {EVENTS / upsert_floor:,.0f} events/s; "
        f"converting the events alone, no database: {conversion[0] / upsert_floor:.2f}x)",
    )
    print_goal(
        f"re-sync of unchanged events vs first sync ({database})",
        f"at most {RESYNC_GOAL}x the first sync's time",
        resync <= RESYNC_GOAL,
        f"{resync:.2f}x ({again[0]:.2f} s vs {first[0]:.2f} s)",
    )
