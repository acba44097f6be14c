"""Signal receivers wired in AppConfig.ready()."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from . import signals

logger = logging.getLogger(__name__)


@receiver(signals.events_synced, dispatch_uid="recall_calendar_reconcile_synced_events")
def reconcile_synced_events(sender, calendar, events, **kwargs) -> None:
    """Apply the recording policy to what a sync changed: schedule, move or remove bots."""
    from .scheduling import reconcile_events

    result = reconcile_events(events)
    if result.failed:
        logger.warning("Reconciling calendar %s: %d event(s) failed.", calendar.pk, result.failed)
