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
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from . import outcomes, signals
from .client import RecallClient, strip_secrets
from .event_rows import BOTS, RECALL_ID, event_row, upsert
from .exceptions import RecallNotFoundError
from .models import Calendar, CalendarEvent, CalendarStatus, Platform
from .notifications import notify_disconnected
from .utils import parse_datetime_or_none, parse_uuid

logger = logging.getLogger(__name__)

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
    pages: int = 0
    #: Our clock before the listing, for a client that cannot tell Recall's (a host's subclass).
    started: datetime = field(default_factory=timezone.now)

    def see(self, events: dict[uuid.UUID, dict]) -> None:
        times = [t for t in map(_updated_at, events.values()) if t is not None]
        if self.newest is not None:
            times.insert(0, self.newest)
        self.in_order = self.in_order and all(a <= b for a, b in pairwise(times))
        self.newest = max(times, default=None)
        self.pages += 1

    def settled(self, pages: Iterable[Any]) -> datetime | None:
        """Where the watermark may move once every page is applied. In no order, not past the
        moment the listing began by Recall's clock: an event changed after it, behind the
        cursor, was not listed, while a later change ahead of it was. One second earlier still,
        as the ``Date`` header drops the fraction. A single page is one snapshot: its newest."""
        if self.newest is None or self.in_order or self.pages < 2:
            return self.newest
        began = getattr(pages, "first_answered_at", None) or self.started
        return min(self.newest, began - timedelta(seconds=1))


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
    once, when the whole sync is applied, and no later than the listing's start by Recall's clock
    (:meth:`PageOrder.settled`). It never moves when this sync starts after the
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
        pages = client.iter_calendar_event_pages(**filters)
        for page in pages:
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
        settled = order.settled(pages)
        if contiguous and not order.in_order and settled is not None:
            _advance_watermark(calendar, settled)
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
        pages = client.iter_calendar_event_pages(**filters)
        for page in pages:
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
        settled = order.settled(pages)
        if not order.in_order and settled is not None:
            _advance_watermarks(contiguous, settled)
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


def _advance_watermarks(calendar_pks: list[int], until: datetime) -> int:
    """Move each calendar's watermark forward to ``until`` in one UPDATE; never backwards.
    Returns how many moved.

    Written as SQL: it runs on every page, and the ORM's compiling of this one UPDATE cost
    more than the database's running of it (0.3 ms against 0.05 on SQLite).
    """
    if not calendar_pks:
        return 0
    connection = connections[router.db_for_write(Calendar)]
    quote, meta = connection.ops.quote_name, Calendar._meta
    column = quote(meta.get_field("events_synced_until").column)
    at = connection.ops.adapt_datetimefield_value(until)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {column} = %s"
            f" WHERE {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(calendar_pks))})"
            f" AND ({column} IS NULL OR {column} < %s)",
            [at, *calendar_pks, at],
        )
        return cursor.rowcount


def _announce(done: WorkspaceSync) -> None:
    """``events_synced`` once per calendar whose events the sweep created or changed."""
    if not done.calendars or not signals.events_synced.has_listeners(Calendar):
        return
    for calendar in Calendar.objects.filter(pk__in=list(done.calendars)):
        _send_events_synced(calendar, done.calendars[calendar.pk])


def changed_events(result: SyncResult) -> QuerySet[CalendarEvent]:
    """The rows a sync created or changed, in one query whatever their number: the ids go as one
    parameter, where a list would take one variable each (SQLite takes 32,766 at most, and a
    large first sync changes more)."""
    return CalendarEvent.objects.filter(recall_id__in=_listed(result.changed_ids))


def _listed(recall_ids: list[uuid.UUID]) -> RawSQL:
    """A subquery of ``recall_ids`` that takes them as one parameter."""
    if connections[router.db_for_read(CalendarEvent)].vendor == "sqlite":
        return RawSQL("SELECT value FROM json_each(%s)", [json.dumps([i.hex for i in recall_ids])])
    # PostgreSQL, the other database the upsert is written for
    return RawSQL("SELECT unnest(%s::uuid[])", [recall_ids])


def _stored_versions(recall_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
    """(calendar pk, Recall updated_at, is_deleted, bots) of the stored rows among
    ``recall_ids``, by Recall id.

    Written as SQL and converted here: every page reads it, and the ORM's compiling of the query
    and its converter per value were most of a re-sync's time.
    """
    connection = connections[router.db_for_read(CalendarEvent)]
    meta, quote = CalendarEvent._meta, connection.ops.quote_name
    names = ("recall_id", "calendar", "recall_updated_at", "is_deleted", "bots")
    columns = ", ".join(quote(meta.get_field(name).column) for name in names)
    listed = _listed(recall_ids)
    zone = connection.timezone
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {quote(meta.db_table)}"
            f" WHERE {quote(meta.get_field('recall_id').column)} IN ({listed.sql})",
            listed.params,
        )
        return {
            # SQLite holds UUIDs as hex and datetimes as naive text in the connection's zone;
            # both databases hand JSON over as text (Django loads PostgreSQL's jsonb so).
            _as_uuid(recall_id): (
                calendar_pk,
                _as_aware(updated_at, zone),
                bool(is_deleted),
                json.loads(bots),
            )
            for recall_id, calendar_pk, updated_at, is_deleted, bots in cursor.fetchall()
        }


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def _as_aware(value: datetime | str | None, zone: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value


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
    moved = _advance_watermarks([calendar.pk], until)
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
    before = _stored_versions(list(events))
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
        row = event_row(recall_id, event, owner, updated_at)
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
        upsert(rows)
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
