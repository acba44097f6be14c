"""Recall-managed scheduling (the default): ``/api/v2/calendar-events/{id}/bot/``.

Recall deduplicates by key, keeps the bots on the event (``bots``) and removes them with the
calendar, so our record of a bot is the ``bots`` list of Recall's last answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet
from django.utils import timezone

from ..client import RecallClient
from ..dedup import canonical_meeting_url
from ..models import CalendarEvent
from ..utils import parse_datetime_or_none, parse_uuid
from .base import SchedulingBackend

#: Where a bot's meetings are looked for first: those starting around the time it reported (a
#: bot joins at the start and is done within the meeting's length); the whole table otherwise.
BOT_WINDOW_BEFORE = timedelta(days=2)
BOT_WINDOW_AFTER = timedelta(days=1)


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

    def bot_ids(self, event: CalendarEvent) -> set[UUID]:
        ids = (parse_uuid(bot.get("bot_id")) for bot in _live_bots(event, None))
        return {bot_id for bot_id in ids if bot_id is not None}

    def events_of_bot(self, bot_id: UUID, near: datetime) -> list[int]:
        nearby = CalendarEvent.objects.filter(
            start_time__gte=near - BOT_WINDOW_BEFORE, start_time__lte=near + BOT_WINDOW_AFTER
        )
        return _listing(nearby, bot_id) or _listing(CalendarEvent.objects.all(), bot_id)


def _store_bots(event: CalendarEvent, answer: Mapping[str, Any]) -> None:
    """Keep Recall's ``bots`` list of the answered event, on this instance and in the database."""
    event.bots = list(answer.get("bots") or [])
    recall_id = answer.get("id") or event.recall_id
    CalendarEvent.objects.filter(recall_id=recall_id).update(bots=event.bots)


def _listing(events: QuerySet[CalendarEvent], bot_id: UUID) -> list[int]:
    """The events of ``events`` whose ``bots`` list names ``bot_id``.

    A text match on the JSON narrows the rows in SQL on SQLite and PostgreSQL alike (JSON
    containment is not portable); each candidate's list is then checked entry by entry.
    """
    text = str(bot_id)
    candidates = events.filter(bots__icontains=text).values_list("pk", "bots")
    return [
        pk
        for pk, bots in candidates
        if any(isinstance(bot, dict) and str(bot.get("bot_id")).lower() == text for bot in bots)
    ]


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
