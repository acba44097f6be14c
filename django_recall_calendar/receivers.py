"""Signal receivers wired in AppConfig.ready()."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from . import conf, connections, notifications, signals, webhooks
from .models import Calendar

logger = logging.getLogger(__name__)


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="recall_calendar_user_deleted")
def delete_user_calendars_at_recall(sender, instance, using=None, **kwargs) -> None:
    """A deleted user's calendars (and our self-managed bots of their meetings) must stop
    recording at Recall too, once the deletion commits."""
    calendars = Calendar.objects.using(using).filter(user=instance)
    recall_ids = [str(recall_id) for recall_id in calendars.values_list("recall_id", flat=True)]
    if not recall_ids:
        return
    bots = connections.exclusive_bots(calendars)

    def at_recall() -> None:
        connections.delete_calendars_at_recall(recall_ids)
        connections.delete_bots(bots)

    transaction.on_commit(at_recall, using=using)


@receiver(signals.calendar_disconnected, dispatch_uid="recall_calendar_disconnected_email")
def email_disconnected_owner(sender, calendar, reason="", deleted=False, **kwargs) -> None:
    """Tell the owner to reconnect (when enabled); a mail failure never breaks the caller."""
    if deleted or not conf.get("NOTIFY_DISCONNECTED_BY_EMAIL"):
        return
    try:
        notifications.send_disconnected_email(calendar, reason)
    except OSError:
        logger.exception("Could not email the owner of disconnected calendar %s.", calendar.pk)


@receiver(signals.events_synced, dispatch_uid="recall_calendar_reconcile_synced_events")
def reconcile_synced_events(sender, calendar, events, **kwargs) -> None:
    """Apply the recording policy to what a sync changed: schedule, move or remove bots."""
    from .scheduling import reconcile_candidates, reconcile_events

    result = reconcile_events(reconcile_candidates(events))
    if result.failed:
        logger.warning("Reconciling calendar %s: %d event(s) failed.", calendar.pk, result.failed)


@receiver(post_save, sender=Calendar, dispatch_uid="recall_calendar_adopt_early_deliveries")
def adopt_early_deliveries(sender, instance, created=False, raw=False, **kwargs) -> None:
    """Webhooks that arrived before this calendar's row existed are processed now."""
    if created and not raw:
        webhooks.adopt_deliveries(instance)
