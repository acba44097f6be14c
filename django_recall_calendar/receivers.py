"""Receivers of Django's model signals, wired in AppConfig.ready().

The app never listens to its own signals (they are for hosts): what follows a sync or a
disconnection is called by the flow itself, where a reader can see it.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from . import calendars, tasks, webhooks
from .models import Calendar


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="recall_calendar_user_deleted")
def delete_user_calendars_at_recall(sender, instance, using=None, **kwargs) -> None:
    """A deleted user's calendars (and our self-managed bots of their meetings) must stop
    recording at Recall too, once the deletion commits."""
    calendars.forget_user_calendars(instance, using=using)


@receiver(post_save, sender=Calendar, dispatch_uid="recall_calendar_adopt_early_deliveries")
def adopt_early_deliveries(sender, instance, created=False, raw=False, **kwargs) -> None:
    """Webhooks that arrived before this calendar's row existed are processed now."""
    if created and not raw:
        tasks.process_after_commit(webhooks.adopt_deliveries(instance))
