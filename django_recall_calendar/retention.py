"""How long webhook deliveries are kept: finished ones go after an age the host chooses.

A delivery is kept while it can still matter: an unprocessed, claimed or failed one is work not
done (it is retried or replayed), so only ``processed`` and ``ignored`` ones are ever deleted. The
minimum age outlasts Recall's redelivery schedule (about a day): a redelivered message whose row
is gone would be stored and processed again.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .models import DeliveryStatus, WebhookDelivery

FINISHED = (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED)
MIN_AGE = timedelta(days=2)
#: Rows deleted per statement, so a first prune of millions never holds one long lock.
BATCH = 5000


def prune_deliveries(older_than: timedelta) -> int:
    """Delete finished deliveries received before ``now - older_than``; returns how many."""
    if older_than < MIN_AGE:
        raise ValueError(f"Deliveries are kept at least {MIN_AGE.days} days.")
    finished = WebhookDelivery.objects.filter(
        status__in=FINISHED, received_at__lt=timezone.now() - older_than
    )
    deleted = 0
    while batch := list(finished.values_list("pk", flat=True)[:BATCH]):
        # The status is checked again: a replay may have claimed a row since it was listed.
        count, _ = WebhookDelivery.objects.filter(pk__in=batch, status__in=FINISHED).delete()
        deleted += count
    return deleted
