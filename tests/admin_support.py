"""Rows and users for the admin tests.

Lists are tested on rows written straight to the database (fast, no Recall involved); actions on
calendars and events that went through the real flow (connected at the emulator, synced here).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from django_recall_calendar import calendars, sync
from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    CalendarStatus,
    DeliveryStatus,
    Platform,
    SelfManagedBot,
    WebhookDelivery,
)


def make_staff(username: str, *, perms: tuple[str, ...] = ()) -> User:
    """A staff user with the given ``recall_calendar`` permission codenames (not a superuser)."""
    user = User.objects.create_user(username, f"{username}@staff.example", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="recall_calendar", codename__in=perms)
    )
    return user


def make_calendar(user: User, email: str = "", **fields) -> Calendar:
    fields.setdefault("platform", Platform.GOOGLE_CALENDAR)
    fields.setdefault("status", CalendarStatus.CONNECTED)
    return Calendar.objects.create(
        user=user,
        recall_id=uuid.uuid4(),
        platform_email=email or f"{user.username}@example.com",
        **fields,
    )


def make_events(
    calendar: Calendar,
    count: int,
    *,
    start: datetime | None = None,
    step: timedelta = timedelta(hours=1),
    minutes: int = 30,
    **fields,
) -> list[CalendarEvent]:
    """``count`` events ``step`` apart from ``start`` (default: in an hour), in one INSERT."""
    start = start or timezone.now() + timedelta(hours=1)
    fields.setdefault("meeting_url", "https://meet.google.com/abc-defg-hij")
    fields.setdefault("meeting_platform", "google_meet")
    fields.setdefault("platform", calendar.platform)
    events = [
        CalendarEvent(
            calendar=calendar,
            recall_id=uuid.uuid4(),
            start_time=start + i * step,
            end_time=start + i * step + timedelta(minutes=minutes),
            **{"title": f"Meeting {i}", **fields},
        )
        for i in range(count)
    ]
    return CalendarEvent.objects.bulk_create(events)


def make_self_managed_bot(event: CalendarEvent) -> SelfManagedBot:
    """The row self-managed scheduling keeps for a bot created at Recall for ``event``."""
    bot = SelfManagedBot.objects.create(
        deduplication_key=f"{event.start_time.isoformat()}-{event.meeting_url}-{event.recall_id}",
        recall_bot_id=uuid.uuid4(),
        meeting_url=event.meeting_url or "",
        join_at=event.start_time,
    )
    bot.events.add(event)
    return bot


def make_deliveries(calendar: Calendar | None, count: int, **fields) -> list[WebhookDelivery]:
    fields.setdefault("status", DeliveryStatus.PROCESSED)
    fields.setdefault("event_type", "calendar.sync_events")
    recall_id = str(calendar.recall_id) if calendar else str(uuid.uuid4())
    return WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            message_id=f"msg_{uuid.uuid4().hex}",
            payload={"event": fields["event_type"], "data": {"calendar_id": recall_id}},
            calendar=calendar,
            calendar_recall_id=recall_id,
            **fields,
        )
        for _ in range(count)
    )


def connect_calendar(emulator, user: User, email: str, **secrets: str) -> Calendar:
    """A calendar connected the real way: created and connected at the emulator, refreshed here."""
    calendar, _ = calendars.connect_calendar_for(
        user,
        Platform.GOOGLE_CALENDAR,
        secrets.get("refresh_token", "refresh-token-of-" + user.username),
        "client-id.apps.example",
        secrets.get("client_secret", "client-secret-of-" + user.username),
        email,
    )
    emulator.connect_calendar(str(calendar.recall_id), email=email)
    return sync.refresh_calendar(calendar)


def mirror_events(emulator, calendar: Calendar, *specs: dict) -> list[CalendarEvent]:
    """Add events at the emulator, sync them here; returns the local rows in the order given."""
    recall_ids = [emulator.add_event(str(calendar.recall_id), **spec)["id"] for spec in specs]
    sync.sync_events(calendar)
    rows = CalendarEvent.objects.in_bulk([uuid.UUID(i) for i in recall_ids], field_name="recall_id")
    return [rows[uuid.UUID(i)] for i in recall_ids]
