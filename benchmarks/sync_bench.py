"""Event sync: 10,000 events into the database, against floors measured in the same run.

The database part (pages already fetched and parsed, so neither Recall's HTTP nor the parse of
its JSON is timed, for the sync or the floors) is compared with the fastest ways this machine can
write the very same rows, 100 per transaction as the sync commits:
- PostgreSQL: ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE`` (the floor for an
  upsert) and ``COPY`` (the floor for any ingest), both with psycopg directly;
- SQLite: the upsert with the sqlite3 module on Django's own connection (the same PRAGMAs), as one
  multi-row ``VALUES`` statement per page and as ``executemany`` of a one-row statement; the
  faster is the floor (no COPY there).
Every floor starts from the rows' Python values (datetimes, UUIDs, the JSON columns' objects):
psycopg renders them as it sends them, and the SQLite floors render them with the standard
library (``json.dumps`` and the like), as any writer must; what the sync adds on top (reading
Recall's objects, deriving the columns, the page's read of stored versions and its watermark)
is its own cost. The SQLite write of values rendered beforehand is printed as well, with the
sync's ratio to it: the database alone.

A re-sync of the same, unchanged events is compared with the first sync. Each figure is the
median of ``ROUNDS`` rounds run in turn. The whole sync, pages fetched from the emulator over
HTTP, is an extra line; so is the Python conversion of the events alone (what the sync does before
the database sees a page), the sync's own limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
ROUNDS = 5


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
        list(event_rows.statements(rows, connection))  # built as the sync builds them, unsent
        converted += len(rows)
    return converted


def median(samples: list[tuple[float, Any, int]]) -> tuple[float, Any, int]:
    """The sample of median time (the middle one of an odd number of rounds)."""
    return sorted(samples, key=lambda sample: sample[0])[len(samples) // 2]


def empty_table() -> None:
    CalendarEvent.objects.all().delete()


def columns() -> list:
    """Every column of an event row but the primary key."""
    meta = CalendarEvent._meta
    return [field for field in meta.local_concrete_fields if field is not meta.pk]


def stored_rows() -> list[tuple]:
    """The rows the sync wrote, as Python values in column order."""
    return list(CalendarEvent.objects.order_by("pk").values_list(*[f.attname for f in columns()]))


@dataclass
class Floor:
    """A floor's write and what it is: an upsert (the goal's floor is the fastest of those), an
    ingest (COPY), or the database's write alone (values rendered beforehand)."""

    write: Callable[[], None]
    role: str = "upsert"


def postgres_floors(rows: list[tuple]) -> dict[str, Floor]:
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

    return {
        "unnest upsert (psycopg)": Floor(unnest),
        "COPY (psycopg)": Floor(copy, role="ingest"),
    }


def sqlite_floor(rows: list[tuple]) -> dict[str, Floor]:
    """The upsert of ``rows`` with sqlite3, 100 rows per transaction.

    Like the PostgreSQL floors, whose psycopg renders each Python value (JSON, datetimes, UUIDs)
    as it sends it, these start from the rows' Python values and render them the fastest way the
    standard library offers (``json.dumps``, the datetime's own text, ``UUID.hex``), then write
    them in either form: one multi-row ``VALUES`` statement per page, or ``executemany`` of a
    one-row statement. The goal counts the faster. The same write of values rendered beforehand
    is printed too: what the database alone costs.

    On Django's own sqlite3 connection, so the floors run under exactly the PRAGMAs the sync does
    (Django turns ``foreign_keys`` on; a host's ``init_command`` would apply to both alike).
    """
    fields = columns()
    table = CalendarEvent._meta.db_table
    names = ", ".join(f'"{field.column}"' for field in fields)
    updates = ", ".join(
        f'"{f.column}" = excluded."{f.column}"' for f in fields if f.name != "recall_id"
    )
    values = f"({', '.join('?' * len(fields))})"
    conflict = f'ON CONFLICT ("recall_id") DO UPDATE SET {updates}'
    one_row = f'INSERT INTO "{table}" ({names}) VALUES {values} {conflict}'
    renderers = [
        (index, render)
        for index, render in enumerate(map(_sqlite_renderer, fields))
        if render is not None
    ]

    def rendered(row: tuple) -> list:
        values = list(row)
        for index, render in renderers:
            values[index] = render(values[index])
        return values

    pages = [rows[start : start + PAGE] for start in range(0, len(rows), PAGE)]
    multi_row = {
        len(page): f'INSERT INTO "{table}" ({names}) VALUES {", ".join([values] * len(page))} '
        + conflict
        for page in pages
    }
    before = [[value for row in page for value in rendered(row)] for page in pages]

    def transactions(write: Callable[[Any, int], None]) -> None:
        connection.ensure_connection()
        raw = connection.connection
        for index in range(len(pages)):
            raw.execute("BEGIN")
            write(raw, index)
            raw.execute("COMMIT")

    def multi(raw: Any, index: int) -> None:
        page = pages[index]
        raw.execute(multi_row[len(page)], [value for row in page for value in rendered(row)])

    def many(raw: Any, index: int) -> None:
        raw.executemany(one_row, [rendered(row) for row in pages[index]])

    def written(raw: Any, index: int) -> None:
        raw.execute(multi_row[len(pages[index])], before[index])

    return {
        "multi-row VALUES upsert (sqlite3)": Floor(lambda: transactions(multi)),
        "executemany upsert (sqlite3)": Floor(lambda: transactions(many)),
        "  the same, values rendered beforehand (extra)": Floor(
            lambda: transactions(written), role="write alone"
        ),
    }


def _sqlite_renderer(field: Any) -> Callable[[Any], Any] | None:
    """The fastest rendering of a field's Python values into what the sqlite3 module takes."""
    kind = field.get_internal_type()
    if kind == "JSONField":  # the standard library's fastest: compact, no circularity check
        return json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    if kind == "DateTimeField":  # aware UTC values: their text less "+00:00" is Django's
        return lambda value: None if value is None else value.isoformat(" ")[:-6]
    if kind == "UUIDField":
        return lambda value: value.hex
    return None


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

    # Rounds of (conversion, first sync, re-sync, every floor), each figure the median of its
    # rounds: the machine's load moves within a run, and this keeps a burst from deciding a ratio.
    conversions, firsts, agains = [], [], []
    floors: dict[str, Floor] = {}
    floor_samples: dict[str, list] = {}
    for _ in range(ROUNDS):
        conversions.append(timed(lambda: convert_only(calendar, pages)))
        empty_table()
        Calendar.objects.filter(pk=calendar.pk).update(events_synced_until=None)
        firsts.append(timed(db_sync))
        assert firsts[-1][1].created == EVENTS, firsts[-1][1]
        agains.append(timed(db_sync))  # a full re-sync after a first: watermark at the newest
        assert agains[-1][1].changed == 0, agains[-1][1]
        if not floors:
            rows = stored_rows()
            floors = postgres_floors(rows) if database == "postgres" else sqlite_floor(rows)
        for name, floor in floors.items():
            empty_table()
            floor_samples.setdefault(name, []).append(timed(floor.write))
            assert CalendarEvent.objects.count() == EVENTS
    conversion, first, again = map(median, (conversions, firsts, agains))
    floor_times = {name: median(samples) for name, samples in floor_samples.items()}

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
            *(
                row(name if name.startswith(" ") else f"floor: {name}", measured, False)
                for name, measured in floor_times.items()
            ),
        ],
    )
    upsert_floor = min(
        floor_times[name][0] for name, floor in floors.items() if floor.role == "upsert"
    )
    ratio, resync = first[0] / upsert_floor, again[0] / first[0]
    print_goal(
        f"sync database part vs upsert floor ({database})",
        f"within {FLOOR_GOAL}x of the floor",
        ratio <= FLOOR_GOAL,
        f"{ratio:.2f}x ({EVENTS / first[0]:,.0f} vs {EVENTS / upsert_floor:,.0f} events/s; "
        f"converting the events alone, no database: {conversion[0] / upsert_floor:.2f}x"
        + "".join(
            f"; vs the write of values rendered beforehand: {first[0] / floor_times[name][0]:.2f}x"
            for name, floor in floors.items()
            if floor.role == "write alone"
        )
        + ")",
    )
    print_goal(
        f"re-sync of unchanged events vs first sync ({database})",
        f"at most {RESYNC_GOAL}x the first sync's time",
        resync <= RESYNC_GOAL,
        f"{resync:.2f}x ({again[0]:.2f} s vs {first[0]:.2f} s)",
    )
