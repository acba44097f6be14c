"""A calendar's life: connect, reconnect, disconnect, and the one flow that syncs it.

Each function pairs the Recall calls with the local rows. The social-auth pipeline, the "my
calendars" pages, the admin, the REST API, the tasks and ``manage.py recall_sync`` all call these,
so every door creates, syncs and removes calendars the same way.

Syncing a calendar always means the same three steps, in this order and readable here: refresh the
calendar from Recall, mirror its events, then bring the bots of its meetings in line with the
recording policy. :func:`sync_calendar` does all three for one calendar (the safety net against
missed webhooks); :func:`sync_changes` serves a webhook, reconciling each applied page's changed
events right after the page commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.views.decorators.debug import sensitive_variables

from . import signals
from .backends import get_backend
from .client import RecallClient
from .exceptions import RecallError, RecallNotFoundError
from .models import Calendar, CalendarEvent, CalendarStatus
from .scheduling import (
    ReconcileResult,
    reconcile_calendar,
    reconcile_candidates,
    reconcile_or_hand_off,
)
from .status_changes import disconnected_between
from .sync import (
    SyncResult,
    WorkspaceSync,
    apply_calendar,
    refresh_calendar,
    strip_secrets,
    sync_events,
    sync_workspace_events,
)

logger = logging.getLogger(__name__)


def find_existing_calendar(user, platform: str, email: str, social_auth=None) -> Calendar | None:
    """The user's calendar for this platform and OAuth account (same social-auth row or email)."""
    account = Q(oauth_email__iexact=email) if email else Q(pk__in=[])
    if social_auth is not None:
        account |= Q(social_auth=social_auth)
    return Calendar.objects.filter(account, user=user, platform=platform).order_by("pk").first()


@sensitive_variables()
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
    one. Every local is hidden from error reports: the token and the client secret are among them.
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
    # Recall echoes the secrets in its answer: nothing here needs them again.
    data = strip_secrets(
        client.create_calendar(platform=platform, oauth_email=email or None, **credentials)
    )
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
    backend = get_backend()
    backend.remove_released(
        backend.release_calendars(Calendar.objects.filter(pk=calendar.pk)), client=client
    )
    reason = "Disconnected by its owner." if by_user else "Disconnected by staff."
    calendar.delete()
    signals.calendar_disconnected.send(
        sender=Calendar, calendar=calendar, reason=reason, deleted=True
    )


def forget_user_calendars(user, *, using: str | None = None) -> None:
    """Stop a user's calendars (and the bots only they need) at Recall once the user's deletion
    commits; the rows themselves go with the user by cascade."""
    calendars = Calendar.objects.using(using).filter(user=user)
    recall_ids = [str(recall_id) for recall_id in calendars.values_list("recall_id", flat=True)]
    if not recall_ids:
        return
    backend = get_backend()
    released = backend.release_calendars(calendars)

    def at_recall() -> None:
        client = RecallClient.from_settings()
        for recall_id in recall_ids:
            _delete_at_recall(client, recall_id)
        backend.remove_released(released, client=client)

    transaction.on_commit(at_recall, using=using)


# -- the sync flow ---------------------------------------------------------------------------------


@dataclass
class CalendarSync:
    """What one pass of the flow did: the calendar's status, its events, its bots.

    ``events`` and ``bots`` stay empty for a calendar Recall no longer knows (status ``missing``).
    """

    status: str
    events: SyncResult = field(default_factory=SyncResult)
    bots: ReconcileResult = field(default_factory=ReconcileResult)


def refresh_and_reconcile(calendar: Calendar, *, client: RecallClient | None = None) -> Calendar:
    """Re-read ``calendar`` (a ``calendar.update``); after a disconnection or a reconnection, also
    re-read its events and reconcile their bots.

    Recall unschedules a disconnected calendar's future bots without moving the events'
    ``updated_at``, and announces a reconnection with this webhook only: no incremental sync
    would show either. The full read brings the true ``bots`` lists; the reconcile then removes
    a bot scheduled while the disconnection was not known here yet, or brings the bots back.
    """
    was_disconnected, before = calendar.is_disconnected, calendar.status_changes
    refresh_calendar(calendar, client=client)
    if calendar.status == CalendarStatus.MISSING:
        return calendar
    if was_disconnected != calendar.is_disconnected or disconnected_between(
        before, calendar.status_changes
    ):
        client = client or RecallClient.from_settings()
        try:
            sync_events(calendar, full=True, client=client)
        finally:
            reconcile_calendar(calendar, client=client)
    return calendar


def sync_calendar(
    calendar: Calendar,
    *,
    full: bool = False,
    client: RecallClient | None = None,
    on_page: Callable[[SyncResult, list[uuid.UUID]], Any] | None = None,
) -> CalendarSync:
    """Refresh ``calendar``, mirror its events (``full`` ignores the watermark), then reconcile the
    bots of every upcoming meeting, each once.

    Every upcoming meeting, not only the changed ones: a bot Recall refused after an earlier sync
    belongs to an event no later sync sees changed. The bots are reconciled even when a page
    fails, for the pages applied, before the error propagates.
    """
    client = client or RecallClient.from_settings()
    refresh_calendar(calendar, client=client)
    if calendar.status == CalendarStatus.MISSING:
        return CalendarSync(status=calendar.status)
    try:
        events = sync_events(calendar, full=full, client=client, on_page=on_page)
    except Exception:
        reconcile_calendar(calendar, client=client)
        raise
    bots = reconcile_calendar(calendar, client=client)
    return CalendarSync(status=calendar.status, events=events, bots=bots)


def sync_changes(
    calendar: Calendar,
    updated_since: datetime | None = None,
    *,
    client: RecallClient | None = None,
) -> CalendarSync:
    """Mirror the events changed since ``updated_since`` (else since the watermark) and reconcile
    the bots of each page's changed events as soon as the page is applied (a webhook's sync)."""
    client = client or RecallClient.from_settings()
    bots = ReconcileResult()
    events = sync_events(
        calendar, updated_since, client=client, on_page=_page_reconciler(bots, client)
    )
    if bots.failed:
        logger.warning("Reconciling calendar %s: %d event(s) failed.", calendar.pk, bots.failed)
    return CalendarSync(status=calendar.status, events=events, bots=bots)


def sync_workspace_changes(
    since: dict[Calendar, datetime | None], *, client: RecallClient | None = None
) -> tuple[WorkspaceSync, ReconcileResult]:
    """Serve the waiting webhooks of several calendars with one workspace-wide listing
    (:func:`sync.sync_workspace_events`), reconciling each page's changed bots as
    :func:`sync_changes` does."""
    client = client or RecallClient.from_settings()
    bots = ReconcileResult()
    events = sync_workspace_events(since, client=client, on_page=_page_reconciler(bots, client))
    if bots.failed:
        logger.warning("Reconciling a workspace sweep: %d event(s) failed.", bots.failed)
    return events, bots


def _page_reconciler(
    bots: ReconcileResult, client: RecallClient
) -> Callable[[SyncResult, list[uuid.UUID]], None]:
    """An ``on_page`` that reconciles the bots of the page's changed events (soonest first),
    adding what it did to ``bots``, or handing them to the door (``bots_handed_to``)."""

    def reconcile_page(result: SyncResult, changed: list[uuid.UUID]) -> None:
        if not changed:
            return
        candidates = reconcile_candidates(CalendarEvent.objects.filter(recall_id__in=changed))
        bots.add(reconcile_or_hand_off(candidates, client=client))

    return reconcile_page
