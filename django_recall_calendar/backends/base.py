"""The interface every scheduling backend implements.

:mod:`django_recall_calendar.scheduling` holds what both modes share (the policy, the merged bot
config, the deduplication key, the order of work); a backend only knows how its bots are created,
removed and recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet

from ..client import RecallClient
from ..models import Calendar, CalendarEvent


class SchedulingBackend:
    """One way of sending bots to meetings. Subclasses implement every method."""

    #: The SCHEDULING_MODE value that selects this backend.
    name = ""

    def schedule(
        self, event: CalendarEvent, key: str, config: Mapping[str, Any], client: RecallClient
    ) -> None:
        """Make one bot with ``config`` join ``event`` at its start, shared by ``key``."""
        raise NotImplementedError

    def unschedule(self, event: CalendarEvent, client: RecallClient) -> None:
        """Remove the event's bot (a bot shared with other events stays for them)."""
        raise NotImplementedError

    def has_bot(self, event: CalendarEvent, now: datetime) -> bool:
        """Whether the event has a bot still to join, or in the meeting right now."""
        raise NotImplementedError

    def is_current(self, event: CalendarEvent, key: str) -> bool:
        """Whether the event's bot is for ``key`` and joins at its start and link."""
        raise NotImplementedError

    def has_bot_condition(self, prefix: str = "") -> Q:
        """SQL for "the event has a bot"; ``prefix`` reaches the event through a join."""
        raise NotImplementedError

    def bot_ids(self, event: CalendarEvent) -> set[UUID]:
        """The Recall ids of the bots the event has now (still to join, or in the meeting)."""
        raise NotImplementedError

    def events_of_bot(self, bot_id: UUID, near: datetime) -> list[int]:
        """The primary keys of the events the bot ``bot_id`` serves; ``near`` is a time the bot
        reported (its meetings start around then)."""
        raise NotImplementedError

    def needs_distinct(self) -> bool:
        """Whether filtering on :meth:`has_bot_condition` can repeat rows (a many-to-many join)."""
        return False

    def with_bot_records(self, events: QuerySet[CalendarEvent]) -> QuerySet[CalendarEvent]:
        """``events`` loading what :meth:`has_bot` reads, in one query per page, not per row."""
        return events

    def release_calendars(self, calendars: QuerySet[Calendar]) -> list[Any]:
        """What must be removed at Recall by us when these calendars go (Recall's calendar delete
        does not cover it). Collected before the rows are deleted; see :meth:`remove_released`."""
        return []

    def remove_released(self, released: list[Any], client: RecallClient | None = None) -> None:
        """Remove what :meth:`release_calendars` collected, logging (not raising) failures."""
