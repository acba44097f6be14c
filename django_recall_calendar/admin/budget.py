"""The state of the shared Recall budget, for the admin: what paces syncs and bots right now."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from .. import budget
from ..models import DeliveryStatus, WebhookDelivery

logger = logging.getLogger(__name__)


def budget_context() -> dict[str, Any]:
    """Each endpoint class's bucket, and the deliveries waiting for a token."""
    try:
        buckets = budget.state()
    except Exception:  # the store being down must not take the deliveries list with it
        logger.exception("Could not read the Recall budget's state")
        buckets = None
    waiting = WebhookDelivery.objects.filter(
        status=DeliveryStatus.RECEIVED, next_attempt_at__gt=timezone.now()
    ).count()
    return {
        "recall_budget": buckets,
        "recall_budget_shared": budget.is_shared(),
        "recall_deferred_deliveries": waiting,
    }
