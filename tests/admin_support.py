"""Rows and users for the admin tests, written straight to the database (fast, no Recall involved).

Tests of actions get their events from the emulator through a real sync instead.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    CalendarStatus,
    DeliveryStatus,
    Platform,
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
