"""The one place tests build users, calendars, events, deliveries and their Recall side.

Two kinds of calendar: ``calendar()`` is a row written straight to the database (fast, no Recall
involved); ``recall_calendar()`` and ``connected_calendar()`` exist at the emulator too, so the
app's calls to Recall find them. Keyword arguments are model fields, for what a test varies.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Permission
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

from .connect_support import oauth_connect

MEET = "https://meet.google.com/abc-defg-hij"


def user(
    username: str = "alice",
    email: str = "",
    *,
    password: str | None = None,
    staff: bool = False,
    perms: tuple[str, ...] = (),
    superuser: bool = False,
) -> AbstractUser:
    """A site user; ``perms`` are ``recall_calendar`` permission codenames (they imply staff)."""
    model = get_user_model()
    if superuser:
        return model.objects.create_superuser(username, email, password)
    made = model.objects.create_user(username, email, password, is_staff=staff or bool(perms))
    if perms:
        made.user_permissions.set(
            Permission.objects.filter(content_type__app_label="recall_calendar", codename__in=perms)
        )
    return made


def _owner(email: str) -> AbstractUser:
    """The user a calendar of ``email`` belongs to when the test does not care (one per address)."""
    owner, _ = get_user_model().objects.get_or_create(username=email, defaults={"email": email})
    return owner


def calendar(
    owner: AbstractUser | None = None, email: str = "", *, save: bool = True, **fields
) -> Calendar:
    """A connected Google calendar row with a made-up Recall id; Recall is never asked about it.

    ``email`` is its calendar address (default: the owner's username at example.com).
    """
    email = email or (f"{owner.username}@example.com" if owner else "owner@example.com")
    fields.setdefault("platform", Platform.GOOGLE_CALENDAR)
    fields.setdefault("status", CalendarStatus.CONNECTED)
    fields.setdefault("recall_id", uuid.uuid4())
    fields.setdefault("platform_email", email)
    if not save:  # for bulk_create, or a test without the database
        return Calendar(user=owner, **fields)
    return Calendar.objects.create(user=owner or _owner(email), **fields)


def recall_calendar(
    emulator,
    email: str = "owner@example.com",
    platform: str = Platform.GOOGLE_CALENDAR,
    *,
    owner: AbstractUser | None = None,
    connect: bool = True,
    **fields,
) -> Calendar:
    """A calendar created at the emulator, its row here, then connected there unless
    ``connect=False``. The row starts as a refresh would leave it (connected, with its address, or
    connecting); a webhook the connection sends may update it, so the row is read back."""
    remote = emulator.create_calendar(platform, oauth_email=email)
    if connect:
        fields = {"status": CalendarStatus.CONNECTED, "platform_email": email, **fields}
    row = Calendar.objects.create(
        user=owner or _owner(email),
        recall_id=remote["id"],
        platform=platform,
        oauth_email=email,
        **fields,
    )
    if connect:
        emulator.connect_calendar(remote["id"], email=email)
        row.refresh_from_db()
    return row


def connected_calendar(emulator, owner: AbstractUser, email: str, **secrets: str) -> Calendar:
    """A calendar connected the real way: handed to Recall by the app, connected at the emulator,
    refreshed here. ``refresh_token``/``client_secret`` replace the made-up secrets."""
    created, _ = calendars.connect_calendar_for(
        owner,
        Platform.GOOGLE_CALENDAR,
        secrets.get("refresh_token", "refresh-token-of-" + owner.username),
        "client-id.apps.example",
        secrets.get("client_secret", "client-secret-of-" + owner.username),
        email,
    )
    emulator.connect_calendar(str(created.recall_id), email=email)
    return sync.refresh_calendar(created)


def oauth_calendar(
    client, emulator, email: str, backend: str = "google-oauth2", *, connect: bool = False
) -> Calendar:
    """A calendar connected as its signed-in user would: social-auth's OAuth flow against the
    emulator; with ``connect=True`` Recall then reports it connected (its webhook refreshes it)."""
    oauth_connect(client, emulator, backend, email)
    created = Calendar.objects.latest("pk")
    if connect:
        emulator.connect_calendar(str(created.recall_id), email=email)
        created.refresh_from_db()
    return created


def _event(calendar: Calendar, start: datetime, minutes: int, fields: dict) -> CalendarEvent:
    fields.setdefault("meeting_url", MEET)
    fields.setdefault("meeting_platform", "google_meet")
    fields.setdefault("platform", calendar.platform)
    fields.setdefault("recall_id", uuid.uuid4())
    fields.setdefault("start_time", start)
    fields.setdefault("end_time", fields["start_time"] + timedelta(minutes=minutes))
    return CalendarEvent(calendar=calendar, **fields)


def event(
    calendar: Calendar,
    *,
    hours: float = 1,
    start: datetime | None = None,
    minutes: int = 30,
    save: bool = True,
    **fields,
) -> CalendarEvent:
    """A Google Meet meeting of ``minutes`` starting at ``start`` (default: ``hours`` from now)."""
    fields.setdefault("title", f"Meeting in {hours} h")
    row = _event(calendar, start or timezone.now() + timedelta(hours=hours), minutes, fields)
    if save:
        row.save()
    return row


def events(
    calendar: Calendar,
    count: int,
    *,
    start: datetime | None = None,
    step: timedelta = timedelta(hours=1),
    minutes: int = 30,
    **fields,
) -> list[CalendarEvent]:
    """``count`` meetings ``step`` apart from ``start`` (default: in an hour), in one INSERT."""
    start = start or timezone.now() + timedelta(hours=1)
    rows = [
        _event(calendar, start + i * step, minutes, {"title": f"Meeting {i}", **fields})
        for i in range(count)
    ]
    return CalendarEvent.objects.bulk_create(rows)


def synced_events(emulator, calendar: Calendar, *specs: dict) -> list[CalendarEvent]:
    """Add events at the emulator, sync them here as a webhook would (bots follow the calendar's
    policy); returns the local rows in the order given."""
    recall_ids = [emulator.add_event(str(calendar.recall_id), **spec)["id"] for spec in specs]
    calendars.sync_changes(calendar)
    rows = CalendarEvent.objects.in_bulk([uuid.UUID(i) for i in recall_ids], field_name="recall_id")
    return [rows[uuid.UUID(i)] for i in recall_ids]


def self_managed_bot(event: CalendarEvent) -> SelfManagedBot:
    """The row self-managed scheduling keeps for a bot created at Recall for ``event``."""
    bot = SelfManagedBot.objects.create(
        deduplication_key=f"{event.start_time.isoformat()}-{event.meeting_url}-{event.recall_id}",
        recall_bot_id=uuid.uuid4(),
        meeting_url=event.meeting_url or "",
        join_at=event.start_time,
    )
    bot.events.add(event)
    return bot


def _delivery(calendar: Calendar | None, fields: dict) -> WebhookDelivery:
    fields.setdefault("status", DeliveryStatus.PROCESSED)
    fields.setdefault("event_type", "calendar.sync_events")
    fields.setdefault("message_id", f"msg_{uuid.uuid4().hex}")
    recall_id = fields.setdefault(
        "calendar_recall_id", str(calendar.recall_id) if calendar else str(uuid.uuid4())
    )
    fields.setdefault(
        "payload", {"event": fields["event_type"], "data": {"calendar_id": recall_id}}
    )
    return WebhookDelivery(calendar=calendar, **fields)


def delivery(calendar: Calendar | None = None, *, save: bool = True, **fields) -> WebhookDelivery:
    """A stored webhook delivery (processed ``calendar.sync_events`` unless told otherwise)."""
    row = _delivery(calendar, fields)
    if save:
        row.save()
    return row


def deliveries(calendar: Calendar | None, count: int, **fields) -> list[WebhookDelivery]:
    """``count`` deliveries like ``delivery()``'s, each with its own message id, in one INSERT."""
    return WebhookDelivery.objects.bulk_create(
        _delivery(calendar, dict(fields)) for _ in range(count)
    )


def bot_webhook(
    emulator,
    bot_id: str,
    status: str,
    sub_code: str | None = None,
    *,
    at: datetime | None = None,
    metadata: dict | None = None,
):
    """A signed ``bot.<status>`` webhook about ``bot_id`` (Recall's shape in webhooks.json),
    delivered now; ``at`` is the status time it reports (default: now)."""
    at = at or timezone.now()
    data = {
        "bot": {"id": str(bot_id), "metadata": metadata or {}},
        "data": {"code": status, "sub_code": sub_code, "updated_at": at.isoformat()},
    }
    return emulator.send_webhook(f"bot.{status}", data)


def bot_id_of(event: CalendarEvent) -> str:
    """The Recall id of the bot managed scheduling put on ``event`` (read back from the row)."""
    event.refresh_from_db()
    (entry,) = event.bots
    return entry["bot_id"]
