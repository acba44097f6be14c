"""Recall objects -> rows: refresh a calendar, and sync its events page by page.

A sync costs one Recall request and a constant handful of SQL statements per page of events (one
bulk upsert plus at most two reads and one watermark update, all in one transaction), never a query
per event. Each page commits on its own, so a crash keeps every page applied before it, and the
calendar's watermark (``events_synced_until``) only ever names a point up to which every event is
applied: the next sync resumes from there.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import outcomes, signals
from .client import SECRET_FIELDS, RecallClient
from .event_fields import DERIVED_FIELDS, derive_fields
from .exceptions import RecallNotFoundError
from .models import Calendar, CalendarEvent, CalendarStatus, Platform, RecordOverride
from .notifications import notify_disconnected
from .utils import parse_datetime_or_none, parse_uuid

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
#: Columns of a new row, in the order of :func:`_event_row`'s values.
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


def _fitted(values: dict, key: str) -> str:
    """The text ``values[key]``, cut to its column."""
    return str(values.get(key) or "")[: FITTED_LENGTHS[key]]


def strip_secrets(obj: Any) -> dict:
    """A copy of a Recall object fit to store: without the OAuth client secret and refresh token."""
    if not isinstance(obj, dict):
        return {}
    return {key: value for key, value in obj.items() if key not in SECRET_FIELDS}


# --- calendars ----------------------------------------------------------------------------------


def refresh_calendar(calendar: Calendar, *, client: RecallClient | None = None) -> Calendar:
    """Re-read ``calendar`` from Recall, store what changed, and announce a (dis)connection.

    The row is locked while the old status is compared with the new one, so two concurrent refreshes
    (a webhook and the reconcile command) send each signal once. A 404 marks the calendar
    ``missing``: Recall no longer knows it, and it must not keep looking healthy.
    """
    client = client or RecallClient.from_settings()
    try:
        # Recall echoes the OAuth secrets: dropped at once, so no local here holds them.
        data = strip_secrets(client.retrieve_calendar(str(calendar.recall_id)))
    except RecallNotFoundError:
        data = None

    with transaction.atomic():
        locked = Calendar.objects.select_for_update().get(pk=calendar.pk)
        was_disconnected, was_status = locked.is_disconnected, locked.status
        if data is None:
            locked.status = CalendarStatus.MISSING
        else:
            apply_calendar(locked, data)
        locked.save(
            update_fields=[
                "status",
                "platform",
                "platform_email",
                "oauth_email",
                "status_changes",
                "raw",
                "updated_at",
            ]
        )

    for name in ("status", "platform", "platform_email", "oauth_email", "status_changes", "raw"):
        setattr(calendar, name, getattr(locked, name))
    calendar.updated_at = locked.updated_at

    if locked.status == CalendarStatus.CONNECTED and was_status != CalendarStatus.CONNECTED:
        signals.calendar_connected.send(sender=Calendar, calendar=calendar)
    elif locked.is_disconnected and not was_disconnected:
        signals.calendar_disconnected.send(
            sender=Calendar, calendar=calendar, reason=calendar.disconnect_reason, deleted=False
        )
        notify_disconnected(calendar, calendar.disconnect_reason)
    return calendar


def apply_calendar(calendar: Calendar, data: dict) -> None:
    """Copy Recall's calendar object onto the (unsaved) row, keeping local values Recall leaves out.

    The refresh and the connect flow both store Recall's answer through this one function.
    """
    if data.get("status") in CalendarStatus.values:
        calendar.status = data["status"]
    if data.get("platform") in Platform.values:
        calendar.platform = data["platform"]
    calendar.platform_email = data.get("platform_email") or ""
    calendar.oauth_email = data.get("oauth_email") or calendar.oauth_email
    changes = data.get("status_changes")
    calendar.status_changes = changes if isinstance(changes, list) else []
    calendar.raw = strip_secrets(data)


# --- events -------------------------------------------------------------------------------------


@dataclass
class SyncResult:
    """What one sync did. ``changed_ids`` are the Recall ids of the events it created or changed."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    pages: int = 0
    received: int = 0
    #: The changed ids, 16 bytes each: a list of UUID objects took ~100 bytes per event, 10 MiB
    #: for a 100,000-event first sync, while the rest of a sync needs one page at a time.
    _changed: bytearray = field(default_factory=bytearray, repr=False)

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted

    @property
    def changed_ids(self) -> list[uuid.UUID]:
        data = self._changed
        return [uuid.UUID(bytes=bytes(data[i : i + 16])) for i in range(0, len(data), 16)]

    def add_changed(self, recall_ids: Iterable[uuid.UUID]) -> None:
        for recall_id in recall_ids:
            self._changed += recall_id.bytes


@dataclass
class PageOrder:
    """Whether the pages read so far came in non-decreasing ``updated_at`` order (within and
    across pages; Recall does not document its order), and the newest time seen: a watermark may
    advance page by page only while they do."""

    in_order: bool
    newest: datetime | None = None

    def see(self, events: dict[uuid.UUID, dict]) -> None:
        times = [t for t in map(_updated_at, events.values()) if t is not None]
        if self.newest is not None:
            times.insert(0, self.newest)
        self.in_order = self.in_order and all(a <= b for a, b in pairwise(times))
        self.newest = max(times, default=None)


def sync_events(
    calendar: Calendar,
    updated_since: datetime | str | None = None,
    *,
    full: bool = False,
    client: RecallClient | None = None,
    on_page: Callable[[SyncResult, list[uuid.UUID]], Any] | None = None,
) -> SyncResult:
    """Mirror the calendar's events updated since ``updated_since`` (else the watermark, else all).

    ``full=True`` ignores the watermark and reads every event Recall holds. ``on_page`` is called
    after each page is committed, with the running result and the Recall ids of the page's created
    or changed events: :mod:`.calendars` reconciles their bots there, the command prints progress.
    Syncing never touches bots itself.

    The watermark advances page by page only while events arrive in non-decreasing ``updated_at``
    order, within and across pages (Recall does not document its order); otherwise it is moved
    once, when the whole sync is applied. It never moves when this sync starts after the
    watermark (a gap nobody applied yet), and never moves backwards. ``events_synced`` (a signal for
    hosts) is sent for what was applied, even when a page fails.
    """
    client = client or RecallClient.from_settings()
    watermark = (
        Calendar.objects.filter(pk=calendar.pk)
        .values_list("events_synced_until", flat=True)
        .first()
    )
    since = _as_datetime(updated_since) if updated_since is not None else None
    if since is None and not full:
        since = watermark
    # The watermark may only move if this sync covers every event after it.
    contiguous = since is None or (watermark is not None and since <= watermark)

    filters: dict[str, Any] = {"calendar_id": str(calendar.recall_id)}
    if since is not None:
        filters["updated_at__gte"] = since.isoformat()

    result = SyncResult()
    order = PageOrder(in_order=contiguous)
    try:
        for page in client.iter_calendar_event_pages(**filters):
            events = _by_id(page)
            order.see(events)
            with transaction.atomic():
                changed = _apply_page(calendar, events, result)
                if order.in_order and order.newest is not None:
                    _advance_watermark(calendar, order.newest)
            result.pages += 1
            result.received += len(events)
            if on_page is not None:
                on_page(result, changed)
        if contiguous and not order.in_order and order.newest is not None:
            _advance_watermark(calendar, order.newest)
        calendar.last_synced_at = timezone.now()
        Calendar.objects.filter(pk=calendar.pk).update(last_synced_at=calendar.last_synced_at)
    finally:
        # The changed rows are named only for a receiver (a host's): a large sync's ids are kept
        # compact until one asks.
        if result.changed and signals.events_synced.has_listeners(Calendar):
            _send_events_synced(calendar, result)
    return result


def _send_events_synced(calendar: Calendar, result: SyncResult) -> None:
    signals.events_synced.send(
        sender=Calendar,
        calendar=calendar,
        created=result.created,
        updated=result.updated,
        deleted=result.deleted,
        events=changed_events(result),
    )


@dataclass
class WorkspaceSync:
    """What one workspace-wide sweep did, in total and per local calendar (by pk)."""

    total: SyncResult = field(default_factory=SyncResult)
    calendars: dict[int, SyncResult] = field(default_factory=dict)
    skipped: int = 0  # events of calendars this app does not know


def sync_workspace_events(
    since: dict[Calendar, datetime | None],
    *,
    client: RecallClient | None = None,
    on_page: Callable[[SyncResult, list[uuid.UUID]], Any] | None = None,
) -> WorkspaceSync:
    """Mirror the changes of several calendars with ONE listing across the workspace.

    ``since`` maps each calendar to the earliest ``updated_at`` it needs (None: from its
    watermark, else everything). The listing has no ``calendar_id`` and starts at the earliest of
    them, so a burst of calendars costs one call per page of changes instead of one per calendar.
    Each page is applied with the same bulk upsert as :func:`sync_events`, events of calendars
    this app does not know are dropped after one lookup per page, and each calendar's watermark
    follows the rules of :func:`sync_events` (the sweep must have started at or before it).
    """
    client = client or RecallClient.from_settings()
    watermarks = dict(
        Calendar.objects.filter(pk__in=[c.pk for c in since]).values_list(
            "pk", "events_synced_until"
        )
    )
    starts = [
        _as_datetime(value) if value is not None else watermarks.get(calendar.pk)
        for calendar, value in since.items()
    ]
    start = None if any(value is None for value in starts) else min(starts)
    contiguous = [
        calendar.pk
        for calendar in since
        if start is None
        or (watermarks.get(calendar.pk) is not None and start <= watermarks[calendar.pk])
    ]
    filters = {"updated_at__gte": start.isoformat()} if start is not None else {}

    done = WorkspaceSync()
    order = PageOrder(in_order=True)
    try:
        for page in client.iter_calendar_event_pages(**filters):
            events = _by_id(page)
            order.see(events)
            owners = _known_calendars(events.values())
            known = {
                recall_id: event
                for recall_id, event in events.items()
                if parse_uuid(event.get("calendar_id")) in owners
            }
            done.skipped += len(events) - len(known)
            with transaction.atomic():
                changed = []
                if known:
                    anyone = next(iter(owners.values()))
                    changed = _apply_page(anyone, known, done.total, owners, done.calendars)
                if order.in_order and order.newest is not None:
                    _advance_watermarks(contiguous, order.newest)
            done.total.pages += 1
            done.total.received += len(known)
            if on_page is not None:
                on_page(done.total, changed)
        if not order.in_order and order.newest is not None:
            _advance_watermarks(contiguous, order.newest)
        Calendar.objects.filter(pk__in=[c.pk for c in since]).update(last_synced_at=timezone.now())
    finally:
        _announce(done)
    return done


def _known_calendars(events: Iterable[dict]) -> dict[uuid.UUID | None, Calendar]:
    """The local calendars of a page's events, by Recall id: one query, whatever the page holds."""
    recall_ids = {parse_uuid(event.get("calendar_id")) for event in events} - {None}
    if not recall_ids:
        return {}
    found = Calendar.objects.filter(recall_id__in=recall_ids).only(
        "id", "recall_id", "platform", "platform_email", "oauth_email"
    )
    return {calendar.recall_id: calendar for calendar in found}


def _advance_watermarks(calendar_pks: list[int], until: datetime) -> None:
    """Move each calendar's watermark forward to ``until`` in one UPDATE; never backwards."""
    if calendar_pks:
        Calendar.objects.filter(pk__in=calendar_pks).filter(
            Q(events_synced_until__isnull=True) | Q(events_synced_until__lt=until)
        ).update(events_synced_until=until)


def _announce(done: WorkspaceSync) -> None:
    """``events_synced`` once per calendar whose events the sweep created or changed."""
    if not done.calendars or not signals.events_synced.has_listeners(Calendar):
        return
    for calendar in Calendar.objects.filter(pk__in=list(done.calendars)):
        _send_events_synced(calendar, done.calendars[calendar.pk])


def changed_events(result: SyncResult) -> QuerySet[CalendarEvent]:
    """The rows a sync created or changed."""
    return CalendarEvent.objects.filter(recall_id__in=result.changed_ids)


def _as_datetime(value: datetime | str) -> datetime:
    parsed = parse_datetime_or_none(value)
    if parsed is None:
        raise ValueError(f"updated_since is not an ISO 8601 date-time: {value!r}")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def _updated_at(event: dict) -> datetime | None:
    return parse_datetime_or_none(event.get("updated_at"))


def _by_id(page: Iterable[Any]) -> dict[uuid.UUID, dict]:
    """The page's valid events by Recall id (the last copy wins: one upsert may not hit a row
    twice)."""
    events: dict[uuid.UUID, dict] = {}
    for event in page:
        recall_id = parse_uuid(event.get("id")) if isinstance(event, dict) else None
        if recall_id is None:
            logger.warning("Skipping a calendar event without a valid id.")
            continue
        events[recall_id] = event
    return events


def _advance_watermark(calendar: Calendar, until: datetime) -> None:
    """Move the watermark forward to ``until`` in one conditional UPDATE; never backwards."""
    moved = (
        Calendar.objects.filter(pk=calendar.pk)
        .filter(Q(events_synced_until__isnull=True) | Q(events_synced_until__lt=until))
        .update(events_synced_until=until)
    )
    if moved or calendar.events_synced_until is None or calendar.events_synced_until < until:
        calendar.events_synced_until = until


def _apply_page(
    calendar: Calendar,
    events: dict[uuid.UUID, dict],
    result: SyncResult,
    owners: dict[uuid.UUID | None, Calendar] | None = None,
    by_calendar: dict[int, SyncResult] | None = None,
) -> list[uuid.UUID]:
    """Upsert one page of events in bulk, count what changed (call inside a transaction) and
    return the Recall ids of the page's created or changed events.

    A workspace sweep passes the page's ``owners`` (every event's calendar, known) and
    ``by_calendar``, where each calendar's own counts are kept as well.

    An event whose stored copy is as new (same ``updated_at``, owner and deletion) or newer is
    recognised from one read of the page's rows and skipped before any conversion; the upsert
    itself also only overwrites a row with a copy at least as new, so an older copy never replaces
    a newer one whatever order pages and webhooks come in, even between that read and the write.
    """
    before = {
        row[0]: row[1:]
        for row in CalendarEvent.objects.filter(recall_id__in=events).values_list(
            "recall_id", "calendar_id", "recall_updated_at", "is_deleted", "bots"
        )
    }
    owners = owners or _owning_calendars(calendar, events.values())
    rows, changed = [], []
    for recall_id, event in events.items():
        owner = owners.get(parse_uuid(event.get("calendar_id")), calendar)
        updated_at = _updated_at(event)
        is_deleted = event.get("is_deleted") is True
        previous = before.get(recall_id)
        bots = event.get("bots") if isinstance(event.get("bots"), list) else []
        if previous is not None and _not_newer(previous, (owner.pk, updated_at, is_deleted, bots)):
            continue
        row = _event_row(recall_id, event, owner, updated_at)
        if row is None:
            continue
        rows.append(row)
        if previous is None:
            counter = "deleted" if is_deleted else "created"
        else:
            counter = "deleted" if is_deleted and not previous[2] else "updated"
        setattr(result, counter, getattr(result, counter) + 1)
        changed.append(recall_id)
        if by_calendar is not None:
            own = by_calendar.setdefault(owner.pk, SyncResult())
            setattr(own, counter, getattr(own, counter) + 1)
            own.add_changed([recall_id])
    result.add_changed(changed)
    if rows:
        _upsert(rows)
        outcomes.link_events((row[RECALL_ID], row[BOTS]) for row in rows)
    return changed


def _not_newer(stored: tuple, incoming: tuple) -> bool:
    """Whether an incoming (owner pk, updated_at, is_deleted, bots) adds nothing to the stored
    one. ``bots`` counts: Recall changes them without moving ``updated_at`` (a disconnection
    unschedules them)."""
    stored_at, incoming_at = stored[1], incoming[1]
    if stored_at is not None and incoming_at is not None and incoming_at < stored_at:
        return True  # an older copy
    return stored == incoming


def _upsert(rows: list[list]) -> None:
    """Write ``rows`` (values in :data:`INSERT_FIELDS` order) in one statement."""
    connection = connections[router.db_for_write(CalendarEvent)]
    sql, columns, adapters = _upsert_statement(connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # the whole page as one JSON document
            page = [dict(zip(columns, row, strict=True)) for row in rows]
            cursor.execute(sql, [json.dumps(page, default=_json_scalar)])
        else:
            cursor.executemany(sql, [_adapted(row, adapters) for row in rows])


def _adapted(row: list, adapters: list) -> list:
    return [adapt(value) if adapt else value for adapt, value in zip(adapters, row, strict=True)]


def _json_scalar(value: Any) -> str:
    """Datetimes and UUIDs in the text PostgreSQL reads back into their columns."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


_UPSERTS: dict[str, tuple[str, list[str], list]] = {}


def _upsert_statement(connection: BaseDatabaseWrapper) -> tuple[str, list[str], list]:
    """The page upsert for ``connection``'s database, its columns, and an adapter per column
    (None: the value as it is).

    PostgreSQL: ``INSERT ... SELECT FROM jsonb_populate_recordset(<the page as one JSON
    document>)``: psycopg's client-side binding rendered an array per column (the ``unnest``
    form) slower than the database wrote it, while one JSON text is encoded in C and sent as is.
    SQLite: a one-row ``INSERT`` run by ``executemany``. Both end with ``ON CONFLICT (recall_id)
    DO UPDATE ... WHERE`` the stored copy is not newer. Built once per database: compiling the
    ORM's ``bulk_create`` and preparing every value through its field was most of a page's time.
    """
    if connection.vendor not in _UPSERTS:
        meta, quote = CalendarEvent._meta, connection.ops.quote_name
        fields = [meta.get_field(name) for name in INSERT_FIELDS]
        table = quote(meta.db_table)
        names = ", ".join(quote(field.column) for field in fields)
        updated_at = quote(meta.get_field("recall_updated_at").column)
        if connection.vendor == "postgresql":
            source = f"SELECT {names} FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
        else:
            source = f"VALUES ({', '.join(['%s'] * len(fields))})"
        sql = (
            f"INSERT INTO {table} ({names}) {source} "
            f"ON CONFLICT ({quote(meta.get_field('recall_id').column)}) DO UPDATE SET "
            + ", ".join(
                f"{quote(column)} = EXCLUDED.{quote(column)}"
                for column in (meta.get_field(name).column for name in EVENT_UPDATE_FIELDS)
            )
            + f" WHERE {table}.{updated_at} IS NULL OR EXCLUDED.{updated_at} IS NULL"
            f" OR EXCLUDED.{updated_at} >= {table}.{updated_at}"
        )
        _UPSERTS[connection.vendor] = (
            sql,
            [field.column for field in fields],
            [_adapter(field, connection) for field in fields],
        )
    return _UPSERTS[connection.vendor]


def _adapter(field: Any, connection: BaseDatabaseWrapper) -> Callable[[Any], Any] | None:
    """How the database wants the field's Python values (None: as they are)."""
    kind = field.get_internal_type()
    if kind == "JSONField":
        return lambda value: connection.ops.adapt_json_value(value, field.encoder)
    if kind == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if kind == "UUIDField" and not connection.features.has_native_uuid_field:
        return lambda value: value.hex
    return None


def _owning_calendars(
    calendar: Calendar, events: Iterable[dict]
) -> dict[uuid.UUID | None, Calendar]:
    """Local calendars by Recall id for the page's events: an event moved to another calendar
    follows it; an id we do not know leaves the event with the calendar being synced."""
    found: dict[uuid.UUID | None, Calendar] = {parse_uuid(calendar.recall_id): calendar}
    others = {parse_uuid(event.get("calendar_id")) for event in events} - {None, *found}
    if others:
        for other in Calendar.objects.filter(recall_id__in=others).only(
            "id", "recall_id", "platform", "platform_email", "oauth_email"
        ):
            found[other.recall_id] = other
    return found


def _has_nul(event: dict) -> bool:
    """Whether a NUL character may be anywhere in ``event``: one C-speed ``json.dumps`` (which
    writes it as ``\\u0000``) instead of a Python walk over every value of every event."""
    try:
        return "\\u0000" in json.dumps(event)
    except (TypeError, ValueError):  # not plain JSON data: let the walk decide
        return True


def _without_nul(value: Any) -> Any:
    """``value`` without NUL characters in any string or key: PostgreSQL's text and jsonb refuse
    them, and one such character in a provider's payload would fail its page on every retry."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _event_row(
    recall_id: uuid.UUID, event: dict, calendar: Calendar, updated_at: datetime | None
) -> list | None:
    """The row for Recall's event object, values in :data:`INSERT_FIELDS` order, or None when it
    lacks a start time."""
    if _has_nul(event):
        event = _without_nul(event)
    start = parse_datetime_or_none(event.get("start_time"))
    if start is None:
        logger.warning("Skipping calendar event %s without a start time.", recall_id)
        return None
    end = parse_datetime_or_none(event.get("end_time"))
    raw = strip_secrets(event.get("raw"))
    platform = event.get("platform") if event.get("platform") in PLATFORMS else None
    platform = platform or calendar.platform
    bots = event.get("bots")
    row = {
        "recall_id": recall_id,
        "calendar": calendar.pk,
        "start_time": start,
        "end_time": max(end, start) if end is not None else start,
        "meeting_url": event.get("meeting_url") or None,
        "meeting_platform": _fitted(event, "meeting_platform") or None,
        "platform": platform,
        "platform_id": _fitted(event, "platform_id"),
        "ical_uid": _fitted(event, "ical_uid"),
        "is_deleted": event.get("is_deleted") is True,
        "bots": bots if isinstance(bots, list) else [],
        "raw": raw,
        "recall_created_at": parse_datetime_or_none(event.get("created_at")),
        "recall_updated_at": updated_at,
        # local choices, written only when the row is new
        "record_override": RecordOverride.DEFAULT,
        "bot_config": {},
        **derive_fields(raw, platform=platform, owner_email=calendar.email),
    }
    for key in ("title", "organizer_email", "recurring_event_id"):
        row[key] = _fitted(row, key)
    return [row[name] for name in INSERT_FIELDS]
