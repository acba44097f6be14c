"""Recall-managed scheduling (the default): ``/api/v2/calendar-events/{id}/bot/``.

Recall deduplicates by key, keeps the bots on the event (``bots``) and removes them with the
calendar, so our record of a bot is the ``bots`` list of Recall's last answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ..client import RecallClient
from ..dedup import canonical_meeting_url
from ..models import CalendarEvent
from ..utils import parse_datetime_or_none
from .base import SchedulingBackend


class ManagedBackend(SchedulingBackend):
    name = "managed"

    def schedule(
        self, event: CalendarEvent, key: str, config: Mapping[str, Any], client: RecallClient
    ) -> None:
        answer = client.schedule_bot(str(event.recall_id), deduplication_key=key, bot_config=config)
        _store_bots(event, answer)

    def unschedule(self, event: CalendarEvent, client: RecallClient) -> None:
        _store_bots(event, client.unschedule_bot(str(event.recall_id)))

    def has_bot(self, event: CalendarEvent, now: datetime) -> bool:
        return bool(_live_bots(event, now))

    def is_current(self, event: CalendarEvent, key: str) -> bool:
        url = canonical_meeting_url(event.meeting_url)
        return any(
            bot.get("deduplication_key") == key
            and parse_datetime_or_none(bot.get("start_time")) == event.start_time
            and (not bot.get("meeting_url") or canonical_meeting_url(bot["meeting_url"]) == url)
            for bot in _live_bots(event, None)
        )

    def has_bot_condition(self, prefix: str = "") -> Q:
        # Comparing the JSON value with [] is portable across SQLite and PostgreSQL.
        return ~Q(**{f"{prefix}bots": []})


def _store_bots(event: CalendarEvent, answer: Mapping[str, Any]) -> None:
    """Keep Recall's ``bots`` list of the answered event, on this instance and in the database."""
    event.bots = list(answer.get("bots") or [])
    recall_id = answer.get("id") or event.recall_id
    CalendarEvent.objects.filter(recall_id=recall_id).update(bots=event.bots)


def _live_bots(event: CalendarEvent, now: datetime | None) -> list[dict]:
    """Bots still to join, plus the current occurrence's (it may be in the meeting right now).

    Recall keeps past bots in the list; counting the running one stops a change during the
    meeting from scheduling a second bot (deduplication only covers bots not started yet).
    """
    now = now or timezone.now()
    bots = []
    for bot in event.bots or []:
        if not isinstance(bot, dict):
            continue
        start = parse_datetime_or_none(bot.get("start_time"))
        if start is None or start > now or start >= event.start_time:
            bots.append(bot)
    return bots
