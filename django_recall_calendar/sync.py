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

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import signals
from .client import SECRET_FIELDS, RecallClient
from .event_fields import DERIVED_FIELDS, derive_fields
from .exceptions import RecallNotFoundError
from .models import Calendar, CalendarEvent, CalendarStatus, Platform
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
        data = client.retrieve_calendar(str(calendar.recall_id))
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
    changed_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


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
    in_order, newest = contiguous, None
    try:
        for page in client.iter_calendar_event_pages(**filters):
            events = _by_id(page)
            times = [t for t in map(_updated_at, events.values()) if t is not None]
            if newest is not None:
                times.insert(0, newest)
            # Ascending so far, within this page and after the previous ones?
            in_order = in_order and all(a <= b for a, b in pairwise(times))
            newest = max(times, default=None)
            with transaction.atomic():
                changed = _apply_page(calendar, events, result)
                if in_order and newest is not None:
                    _advance_watermark(calendar, newest)
            result.pages += 1
            result.received += len(events)
            if on_page is not None:
                on_page(result, changed)
        if contiguous and not in_order and newest is not None:
            _advance_watermark(calendar, newest)
        calendar.last_synced_at = timezone.now()
        Calendar.objects.filter(pk=calendar.pk).update(last_synced_at=calendar.last_synced_at)
    finally:
        if result.changed_ids:
            signals.events_synced.send(
                sender=Calendar,
                calendar=calendar,
                created=result.created,
                updated=result.updated,
                deleted=result.deleted,
                events=changed_events(result),
            )
    return result


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
    calendar: Calendar, events: dict[uuid.UUID, dict], result: SyncResult
) -> list[uuid.UUID]:
    """Upsert one page of events in bulk, count what changed (call inside a transaction) and
    return the Recall ids of the page's created or changed events."""
    before = {
        row[0]: row[1:]
        for row in CalendarEvent.objects.filter(recall_id__in=events).values_list(
            "recall_id", "calendar_id", "recall_updated_at", "is_deleted"
        )
    }
    owners = _owning_calendars(calendar, events.values())
    rows, changed = [], []
    for recall_id, event in events.items():
        owner = owners.get(parse_uuid(event.get("calendar_id")), calendar)
        row = _event_row(recall_id, event, owner)
        if row is None:
            continue
        rows.append(row)
        previous = before.get(recall_id)
        if previous is None:
            counter = "deleted" if row.is_deleted else "created"
        elif previous != (owner.pk, row.recall_updated_at, row.is_deleted):
            counter = "deleted" if row.is_deleted and not previous[2] else "updated"
        else:
            continue
        setattr(result, counter, getattr(result, counter) + 1)
        changed.append(recall_id)
    result.changed_ids.extend(changed)
    if rows:
        CalendarEvent.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["recall_id"],
            update_fields=EVENT_UPDATE_FIELDS,
        )
    return changed


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


def _event_row(recall_id: uuid.UUID, event: dict, calendar: Calendar) -> CalendarEvent | None:
    """An unsaved row for Recall's event object, or None when it lacks a start time."""
    if _has_nul(event):
        event = _without_nul(event)
    start = parse_datetime_or_none(event.get("start_time"))
    if start is None:
        logger.warning("Skipping calendar event %s without a start time.", recall_id)
        return None
    end = parse_datetime_or_none(event.get("end_time"))
    raw = strip_secrets(event.get("raw"))
    platform = event.get("platform") if event.get("platform") in Platform.values else None
    platform = platform or calendar.platform
    bots = event.get("bots")
    derived = derive_fields(raw, platform=platform, owner_email=calendar.email)
    for key in ("title", "organizer_email", "recurring_event_id"):
        derived[key] = _fitted(derived, key)
    return CalendarEvent(
        calendar=calendar,
        recall_id=recall_id,
        start_time=start,
        end_time=max(end, start) if end is not None else start,
        meeting_url=event.get("meeting_url") or None,
        meeting_platform=_fitted(event, "meeting_platform") or None,
        platform=platform,
        platform_id=_fitted(event, "platform_id"),
        ical_uid=_fitted(event, "ical_uid"),
        is_deleted=event.get("is_deleted") is True,
        bots=bots if isinstance(bots, list) else [],
        raw=raw,
        recall_created_at=parse_datetime_or_none(event.get("created_at")),
        recall_updated_at=_updated_at(event),
        **derived,
    )
