"""Recall event objects -> calendar event rows, and the one statement that writes a page of them.

The upsert is written by hand per database, built once per database and row count: compiling the
ORM's ``bulk_create`` and preparing every value through its field was most of a page's time.
Both end with ``ON CONFLICT (recall_id) DO UPDATE ... WHERE`` the stored copy is not newer, so an
older copy never replaces a newer one, whatever order pages and webhooks come in.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import chain
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from .client import strip_secrets
from .event_fields import DERIVED_FIELDS, derive_fields
from .models import Calendar, CalendarEvent, Platform, RecordOverride
from .utils import parse_datetime_or_none

logger = logging.getLogger(__name__)

#: Columns a sync overwrites. Local choices (record_override, bot_config) are never touched.
EVENT_UPDATE_FIELDS = [
    "calendar",
    "start_time",
    "end_time",
    "meeting_url",
    "meeting_platform",
    "platform",
    "platform_id",
    "ical_uid",
    "is_deleted",
    "bots",
    "raw",
    "recall_created_at",
    "recall_updated_at",
    *DERIVED_FIELDS,
]
#: Columns of a new row, in the order of :func:`event_row`'s values.
INSERT_FIELDS = ["recall_id", *EVENT_UPDATE_FIELDS, "record_override", "bot_config"]
#: Where a row holds its Recall id and its bots (to join bots that reported before the sync).
RECALL_ID, BOTS = INSERT_FIELDS.index("recall_id"), INSERT_FIELDS.index("bots")
#: Recall's platforms, as a set (``Platform.values`` builds a new list on every read).
PLATFORMS = frozenset(Platform.values)

#: Columns filled from unbounded texts (Recall's and the provider's); one value too long for its
#: column (PostgreSQL refuses it) would fail its whole page on every retry, so each is cut to fit.
FITTED_LENGTHS = {
    key: CalendarEvent._meta.get_field(key).max_length
    for key in (
        "meeting_platform",
        "platform_id",
        "ical_uid",
        "title",
        "organizer_email",
        "recurring_event_id",
    )
}
#: Derived columns cut to fit, as indexes into ``DERIVED_FIELDS``.
_FITTED_DERIVED = [
    (index, FITTED_LENGTHS[key])
    for index, key in enumerate(DERIVED_FIELDS)
    if key in FITTED_LENGTHS
]


def _fitted(value: Any, key: str) -> str:
    """The text ``value``, cut to the column ``key``."""
    return str(value or "")[: FITTED_LENGTHS[key]]


def event_row(
    recall_id: uuid.UUID, event: dict, calendar: Calendar, updated_at: datetime | None
) -> list | None:
    """The row for Recall's event object, values in :data:`INSERT_FIELDS` order (built in that
    order, no dict on the way: this runs once per event of every sync), or None when it lacks a
    start time."""
    get = event.get
    start = parse_datetime_or_none(get("start_time"))
    if start is None:
        logger.warning("Skipping calendar event %s without a start time.", recall_id)
        return None
    end = parse_datetime_or_none(get("end_time"))
    raw = strip_secrets(get("raw"))
    platform = get("platform")
    if platform not in PLATFORMS:
        platform = calendar.platform
    bots = get("bots")
    derived = derive_fields(raw, platform=platform, owner_email=calendar.email)
    derived_values = [derived[key] for key in DERIVED_FIELDS]
    for index, length in _FITTED_DERIVED:
        derived_values[index] = str(derived_values[index] or "")[:length]
    return [
        recall_id,
        calendar.pk,
        start,
        max(end, start) if end is not None else start,
        get("meeting_url") or None,
        _fitted(get("meeting_platform"), "meeting_platform") or None,
        platform,
        _fitted(get("platform_id"), "platform_id"),
        _fitted(get("ical_uid"), "ical_uid"),
        get("is_deleted") is True,
        bots if isinstance(bots, list) else [],
        raw,
        parse_datetime_or_none(get("created_at")),
        updated_at,
        *derived_values,
        # local choices, written only when the row is new
        RecordOverride.DEFAULT.value,
        {},
    ]


def upsert(rows: list[list]) -> None:
    """Write ``rows`` (values in :data:`INSERT_FIELDS` order) in one statement (on SQLite, one
    per as many rows as its variable limit takes: 1,260 with its default 32,766)."""
    connection = connections[router.db_for_write(CalendarEvent)]
    with connection.cursor() as cursor:
        for sql, params in statements(rows, connection):
            cursor.execute(sql, params)


def statements(rows: list[list], connection: BaseDatabaseWrapper) -> Iterator[tuple[str, list]]:
    """The (SQL, parameters) that write ``rows`` on ``connection``: all the Python work of a
    write, what the sync benchmark times apart from the database."""
    statement = _statement(connection)
    if connection.vendor == "postgresql":  # the whole page as one JSON document
        page = [dict(zip(statement.columns, row, strict=True)) for row in rows]
        yield statement.sql(0), [json.dumps(page, default=_json_scalar)]
        return
    adapted = [statement.adapt(row) for row in rows]
    per_statement = max(1, variable_limit(connection) // len(statement.columns))
    for start in range(0, len(adapted), per_statement):
        chunk = adapted[start : start + per_statement]
        yield statement.sql(len(chunk)), list(chain.from_iterable(chunk))


def variable_limit(connection: BaseDatabaseWrapper) -> int:
    """How many variables one SQLite statement takes on ``connection``, as SQLite itself says
    (Django 5.2's ``max_query_params`` says 999 whatever the library's limit)."""
    connection.ensure_connection()
    return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


def _json_scalar(value: Any) -> str:
    """Datetimes and UUIDs in the text PostgreSQL reads back into their columns."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


@dataclass
class _Statement:
    """A database's page upsert: its columns, its SQL for n rows, and how it wants the values."""

    columns: list[str]
    head: str
    tail: str
    #: (column index, adapter) for the columns whose Python values the driver cannot take as is.
    adapters: list[tuple[int, Callable[[Any], Any]]]
    _by_count: dict[int, str] = field(default_factory=dict)

    def sql(self, rows: int) -> str:
        """The statement for ``rows`` rows (PostgreSQL's takes any number: pass 0)."""
        if rows not in self._by_count:
            values = f"({', '.join(['%s'] * len(self.columns))})"
            source = f"VALUES {', '.join([values] * rows)}" if rows else ""
            self._by_count[rows] = f"{self.head} {source} {self.tail}"
        return self._by_count[rows]

    def adapt(self, row: list) -> list:
        """A copy of ``row`` as the driver takes it (the caller's row keeps its Python values)."""
        values = row.copy()
        for index, adapt in self.adapters:
            values[index] = adapt(values[index])
        return values


_STATEMENTS: dict[str, _Statement] = {}


def _statement(connection: BaseDatabaseWrapper) -> _Statement:
    """The page upsert for ``connection``'s database.

    PostgreSQL: ``INSERT ... SELECT FROM jsonb_populate_recordset(<the page as one JSON
    document>)``: psycopg's client-side binding rendered an array per column (the ``unnest``
    form) slower than the database wrote it, while one JSON text is encoded in C and sent as is.
    SQLite: one multi-row ``INSERT ... VALUES (...), (...)``: faster than ``executemany`` of a
    one-row upsert, whose per-row statement steps cost more than the rows.
    """
    if connection.vendor not in _STATEMENTS:
        meta, quote = CalendarEvent._meta, connection.ops.quote_name
        fields = [meta.get_field(name) for name in INSERT_FIELDS]
        table = quote(meta.db_table)
        names = ", ".join(quote(field.column) for field in fields)
        updated_at = quote(meta.get_field("recall_updated_at").column)
        head = f"INSERT INTO {table} ({names})"
        if connection.vendor == "postgresql":
            head += f" SELECT {names} FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
        tail = (
            f"ON CONFLICT ({quote(meta.get_field('recall_id').column)}) DO UPDATE SET "
            + ", ".join(
                f"{quote(column)} = EXCLUDED.{quote(column)}"
                for column in (meta.get_field(name).column for name in EVENT_UPDATE_FIELDS)
            )
            + f" WHERE {table}.{updated_at} IS NULL OR EXCLUDED.{updated_at} IS NULL"
            f" OR EXCLUDED.{updated_at} >= {table}.{updated_at}"
        )
        adapters = [(index, _adapter(field, connection)) for index, field in enumerate(fields)]
        _STATEMENTS[connection.vendor] = _Statement(
            [field.column for field in fields],
            head,
            tail,
            [(index, adapt) for index, adapt in adapters if adapt is not None],
        )
    return _STATEMENTS[connection.vendor]


#: The JSON columns' text: compact, encoded in C, without the check for circular references
#: (values parsed from JSON cannot hold any): 15% less time than ``json.dumps``.
_json_text = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _adapter(field: Any, connection: BaseDatabaseWrapper) -> Callable[[Any], Any] | None:
    """How the database wants the field's Python values (None: as they are)."""
    kind = field.get_internal_type()
    if kind == "JSONField":
        if field.encoder is None:
            return _json_text
        return lambda value: connection.ops.adapt_json_value(value, field.encoder)
    if kind == "DateTimeField":
        if connection.vendor == "sqlite" and connection.timezone is not None:
            return _sqlite_datetime(connection.timezone)
        return connection.ops.adapt_datetimefield_value
    if kind == "UUIDField" and not connection.features.has_native_uuid_field:
        return lambda value: value.hex
    return None


def _sqlite_datetime(zone: tzinfo) -> Callable[[datetime | None], str | None]:
    """Django's SQLite text of a datetime (naive, in the connection's zone), without its
    per-value settings and awareness checks: four per event."""
    if zone.utcoffset(None) == timedelta(0):

        def adapt(value: datetime | None) -> str | None:
            if value is None or value.tzinfo is None:
                return None if value is None else str(value)
            # An aware UTC datetime's text is the naive one's and "+00:00", which costs less to
            # cut off than ``replace(tzinfo=None)`` costs to call.
            return value.astimezone(UTC).isoformat(" ")[:-6]

        return adapt

    def adapt_in_zone(value: datetime | None) -> str | None:
        if value is None or value.tzinfo is None:
            return None if value is None else str(value)
        return str(value.astimezone(zone).replace(tzinfo=None))

    return adapt_in_zone
