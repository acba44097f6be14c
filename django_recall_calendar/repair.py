"""Bring one calendar fully in line with Recall: the safety net against missed webhooks.

Refresh the calendar, sync its events, then apply the recording policy to every upcoming event (a
bot Recall refused after an earlier sync belongs to an event no later sync sees changed, so only a
whole-calendar reconcile retries it). ``manage.py recall_sync`` and the ``sync_calendar`` task both
run this, so they behave the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .client import RecallClient
from .models import Calendar, CalendarStatus
from .scheduling import ReconcileResult, reconcile_calendar
from .sync import SyncResult, refresh_calendar, sync_events


@dataclass
class Repair:
    """What a repair found and did; ``sync`` and ``bots`` are None for a calendar gone at Recall."""

    status: str
    sync: SyncResult | None = None
    bots: ReconcileResult | None = None


def repair_calendar(
    calendar: Calendar,
    *,
    full: bool = False,
    client: RecallClient | None = None,
    on_page: Callable[[SyncResult], None] | None = None,
) -> Repair:
    """Refresh, sync (``full`` ignores the watermark), then reconcile the calendar's bots."""
    client = client or RecallClient.from_settings()
    refresh_calendar(calendar, client=client)
    if calendar.status == CalendarStatus.MISSING:
        return Repair(status=calendar.status)
    result = sync_events(calendar, full=full, client=client, on_page=on_page)
    return Repair(
        status=calendar.status, sync=result, bots=reconcile_calendar(calendar, client=client)
    )
