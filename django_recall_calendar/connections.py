"""Connect, reconnect and disconnect calendars: each pairs a Recall call with the local row.

The social-auth pipeline, the "my calendars" pages, the admin and the REST API all call these
functions, so every entry point creates, repairs and removes calendars the same way.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import signals
from .client import RecallClient
from .exceptions import RecallError, RecallNotFoundError
from .models import Calendar, CalendarEvent, CalendarStatus, SelfManagedBot
from .sync import apply_calendar, refresh_calendar

logger = logging.getLogger(__name__)


def find_existing_calendar(user, platform: str, email: str, social_auth=None) -> Calendar | None:
    """The user's calendar for this platform and OAuth account (same social-auth row or email)."""
    account = Q(oauth_email__iexact=email) if email else Q(pk__in=[])
    if social_auth is not None:
        account |= Q(social_auth=social_auth)
    return Calendar.objects.filter(account, user=user, platform=platform).order_by("pk").first()


def connect_calendar_for(
    user,
    platform: str,
    refresh_token: str,
    client_id: str,
    client_secret: str,
    email: str = "",
    social_auth=None,
    *,
    client: RecallClient | None = None,
) -> tuple[Calendar, bool]:
    """Hand a refresh token to Recall; returns ``(calendar, created)``.

    The same user, platform and account reconnects the existing calendar (PATCH of the new
    token), so consenting twice never makes a second Recall calendar; another account makes a new
    one.
    """
    client = client or RecallClient.from_settings()
    credentials = {
        "oauth_client_id": client_id,
        "oauth_client_secret": client_secret,
        "oauth_refresh_token": refresh_token,
    }
    calendar = find_existing_calendar(user, platform, email, social_auth)
    created = calendar is None
    if calendar is None:
        calendar = Calendar(user=user, platform=platform)
    else:
        try:
            client.update_calendar(str(calendar.recall_id), **credentials)
        except RecallNotFoundError:
            # Deleted at Recall meanwhile: recreate it there, keeping the row and its settings.
            pass
        else:
            _link_account(calendar, email, social_auth)
            calendar.save()
            return _reread(calendar, client), False
    data = client.create_calendar(platform=platform, oauth_email=email or None, **credentials)
    try:
        with transaction.atomic():
            if calendar.pk is not None:
                # The old Recall calendar and its events are gone: mirror the new one afresh.
                calendar.events.all().delete()
                calendar.events_synced_until = None
            calendar.recall_id = data["id"]
            calendar.status = CalendarStatus.CONNECTING  # unless Recall says otherwise
            apply_calendar(calendar, data)
            _link_account(calendar, email, social_auth)
            calendar.save()
    except Exception:
        _delete_at_recall(client, data["id"])
        raise
    return calendar, created


def _reread(calendar: Calendar, client: RecallClient) -> Calendar:
    """Re-read through sync, which applies Recall's status and announces the reconnection.

    Recall already holds the new token; if this read fails, its next webhook brings the status.
    """
    try:
        return refresh_calendar(calendar, client=client)
    except RecallError as exc:
        logger.warning("Could not re-read reconnected calendar %s: %s", calendar.recall_id, exc)
        return calendar


def _link_account(calendar: Calendar, email: str, social_auth) -> None:
    """Remember which OAuth account (address and social-auth row) Recall's token belongs to."""
    calendar.oauth_email = email or calendar.oauth_email
    if social_auth is not None:
        calendar.social_auth = social_auth


def _delete_at_recall(client: RecallClient, recall_id: str) -> None:
    """Best effort: a calendar Recall created for a row we could not save must not linger there."""
    try:
        client.delete_calendar(str(recall_id))
    except RecallNotFoundError:
        pass
    except RecallError as exc:
        logger.error("Could not delete orphaned Recall calendar %s: %s", recall_id, exc)


def disconnect_calendar(
    calendar: Calendar, *, by_user: bool = True, client: RecallClient | None = None
) -> None:
    """Delete the calendar at Recall (already gone is fine) and locally, then tell listeners.

    A Recall failure other than 404 propagates before anything local changes, so a calendar is never
    forgotten here while Recall keeps recording it.
    """
    client = client or RecallClient.from_settings()
    try:
        client.delete_calendar(str(calendar.recall_id))
    except RecallNotFoundError:
        logger.info("Calendar %s was already gone at Recall.", calendar.recall_id)
    delete_bots(exclusive_bots(Calendar.objects.filter(pk=calendar.pk)), client=client)
    reason = "Disconnected by its owner." if by_user else "Disconnected by staff."
    calendar.delete()
    signals.calendar_disconnected.send(
        sender=Calendar, calendar=calendar, reason=reason, deleted=True
    )


def exclusive_bots(calendars: QuerySet[Calendar]) -> list[SelfManagedBot]:
    """The self-managed bots of these calendars' upcoming meetings that no other calendar uses.

    Recall's calendar delete unschedules only its managed bots: these v1 bots are ours, and would
    still join the meetings of a calendar that is gone.
    """
    others = CalendarEvent.objects.using(calendars.db).exclude(calendar__in=calendars)
    return list(
        SelfManagedBot.objects.using(calendars.db)
        .filter(
            events__calendar__in=calendars,
            events__end_time__gt=timezone.now(),
            recall_bot_id__isnull=False,
        )
        .exclude(events__in=others)
        .distinct()
    )


def delete_bots(bots: list[SelfManagedBot], *, client: RecallClient | None = None) -> None:
    """Delete these bots at Recall and here, logging failures (the calendar goes regardless)."""
    for bot in bots:
        client = client or RecallClient.from_settings()
        try:
            client.delete_bot(bot.recall_bot_id)
        except RecallNotFoundError:
            pass
        except RecallError as exc:
            logger.warning("Could not delete self-managed bot %s: %s", bot.recall_bot_id, exc)
        bot.delete()


def delete_calendars_at_recall(
    recall_ids: list[str], *, client: RecallClient | None = None
) -> None:
    """Delete these calendars at Recall, logging failures instead of raising (user deletion)."""
    if not recall_ids:
        return
    client = client or RecallClient.from_settings()
    for recall_id in recall_ids:
        _delete_at_recall(client, recall_id)
