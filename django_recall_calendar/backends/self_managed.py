"""Self-managed scheduling (``SCHEDULING_MODE = "self_managed"``): our own v1 bots
(``/api/v1/bot/``), one per deduplication key.

The key is claimed in the database (``SelfManagedBot.deduplication_key`` is unique) before Recall
is called, so two syncs racing on copies of one meeting create one bot: the loser of the insert
joins the winner's row. A row whose bot id is still empty is being created by its claimer; a
claim older than the ``SELF_MANAGED_CLAIM_TIMEOUT`` setting (a crashed worker) may be taken over,
and the new claimer first adopts a bot the crashed one may have created (found by the key in the
bot's ``metadata``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Exists, Q, QuerySet
from django.utils import timezone

from .. import conf
from ..client import RecallClient
from ..dedup import canonical_meeting_url, format_start
from ..exceptions import RecallError, RecallInvalidRequestError, RecallNotFoundError
from ..models import Calendar, CalendarEvent, SelfManagedBot
from .base import SchedulingBackend

logger = logging.getLogger(__name__)

CLAIM_ATTEMPTS = 3
CREATE, TAKE_OVER = "create", "take over"

Through = SelfManagedBot.events.through


def _rows(event: CalendarEvent) -> list[SelfManagedBot]:
    """The event's rows (from a prefetch when there is one)."""
    return list(event.self_managed_bots.all())


def _current_bot(event: CalendarEvent) -> SelfManagedBot | None:
    """The row of a bot created for ``event``, if any."""
    return next((row for row in _rows(event) if row.recall_bot_id), None)


def _is_current(event: CalendarEvent, key: str) -> bool:
    """Whether the event's bot is for ``key`` and still joins at its start, at its link."""
    url = canonical_meeting_url(event.meeting_url)
    return any(
        row.recall_bot_id
        and row.deduplication_key == key
        and row.join_at == event.start_time
        and canonical_meeting_url(row.meeting_url) == url
        for row in _rows(event)
    )


def _bot_fields(event: CalendarEvent, key: str, config: Mapping[str, Any]) -> dict[str, Any]:
    metadata = {**(config.get("metadata") or {}), "deduplication_key": key}
    return {
        **config,
        "meeting_url": event.meeting_url,
        "join_at": format_start(event.start_time),
        "metadata": metadata,
    }


def _others(row_pk: int, event: CalendarEvent) -> Exists:
    """Whether events other than ``event`` share the row."""
    return Exists(Through.objects.filter(selfmanagedbot_id=row_pk).exclude(calendarevent=event))


def _claim(key: str, event: CalendarEvent) -> tuple[SelfManagedBot, str]:
    """The row for ``key`` with ``event`` attached, and what this caller must do about its bot:
    :data:`CREATE`, :data:`TAKE_OVER` (a stale claim) or "" (another worker owns it)."""
    for attempt in range(CLAIM_ATTEMPTS):
        try:
            with transaction.atomic():
                row = SelfManagedBot.objects.create(
                    deduplication_key=key, meeting_url=event.meeting_url, join_at=event.start_time
                )
                row.events.add(event)
            return row, CREATE
        except IntegrityError:
            pass
        try:
            with transaction.atomic():
                row = SelfManagedBot.objects.get(deduplication_key=key)
                row.events.add(event)
        except (SelfManagedBot.DoesNotExist, IntegrityError):
            if attempt + 1 == CLAIM_ATTEMPTS:
                raise
            continue  # the claimer gave up between our insert and our read: claim again
        stale = timezone.now() - conf.duration("SELF_MANAGED_CLAIM_TIMEOUT")
        taken_over = (
            row.recall_bot_id is None
            and row.updated_at < stale
            and SelfManagedBot.objects.filter(
                pk=row.pk, recall_bot_id=None, updated_at=row.updated_at
            ).update(updated_at=timezone.now())
        )
        return row, TAKE_OVER if taken_over else ""
    raise AssertionError("unreachable")


def _move_own_bot(event: CalendarEvent, key: str) -> SelfManagedBot | None:
    """Re-key a bot only ``event`` uses (its meeting moved), so it is updated, not duplicated."""
    for row in _rows(event):
        if not row.recall_bot_id or row.deduplication_key == key:
            continue
        try:
            with transaction.atomic():
                moved = (
                    SelfManagedBot.objects.filter(pk=row.pk)
                    .exclude(_others(row.pk, event))
                    .update(deduplication_key=key, updated_at=timezone.now())
                )
        except IntegrityError:
            return None  # another copy of the meeting already claimed the new key
        if moved:
            row.deduplication_key = key
            return row
    return None


def _delete_remote(client: RecallClient, bot_id: UUID) -> None:
    with contextlib.suppress(RecallNotFoundError):
        client.delete_bot(bot_id)


def _create(
    row: SelfManagedBot, fields: dict[str, Any], client: RecallClient, *, adopt: bool
) -> None:
    """Create the row's bot, or with ``adopt`` reuse one a crashed claimer already created."""
    key = row.deduplication_key
    found = client.list_bots(metadata__deduplication_key=key) if adopt else iter(())
    try:
        bot = next(found, None) or client.create_bot(**fields)
    except Exception:
        row.delete()  # release the claim so the next run can try again
        raise
    row.recall_bot_id = bot["id"]
    row.save(update_fields=["recall_bot_id", "updated_at"])


def _update(row: SelfManagedBot, fields: dict[str, Any], client: RecallClient) -> None:
    """PATCH the bot; when Recall refuses (too close to joining, gone), replace it."""
    try:
        client.update_bot(row.recall_bot_id, **fields)
    except (RecallInvalidRequestError, RecallNotFoundError) as exc:
        if not isinstance(exc, RecallNotFoundError):
            _delete_remote(client, row.recall_bot_id)
        row.recall_bot_id = client.create_bot(**fields)["id"]
    row.save(
        update_fields=["recall_bot_id", "deduplication_key", "join_at", "meeting_url", "updated_at"]
    )


def _release(event: CalendarEvent, client: RecallClient, keep: int | None = None) -> None:
    """Detach ``event`` from its other rows; delete each bot no event uses any more.

    A bot only ``event`` uses is deleted at Recall before its row here: when Recall refuses (the
    bot is in the meeting already) the row stays, so no second bot is sent to the meeting.
    """
    for row in _rows(event):
        if row.pk == keep:
            continue
        others = Through.objects.filter(selfmanagedbot_id=row.pk).exclude(calendarevent=event)
        alone = not others.exists()
        if alone and row.recall_bot_id:
            _delete_remote(client, row.recall_bot_id)
        row.events.remove(event)
        orphaned, _ = (
            SelfManagedBot.objects.filter(pk=row.pk).exclude(_others(row.pk, event)).delete()
        )
        if alone and row.recall_bot_id and not orphaned:
            # A copy of the meeting joined the row meanwhile: its bot is gone, so it claims anew.
            SelfManagedBot.objects.filter(pk=row.pk).update(recall_bot_id=None)
        elif orphaned and not alone and row.recall_bot_id:
            _delete_remote(client, row.recall_bot_id)  # the other copies left meanwhile


def _schedule(
    event: CalendarEvent, key: str, config: Mapping[str, Any], client: RecallClient
) -> SelfManagedBot:
    """Make sure one bot with ``config`` joins ``event`` at its start, shared by its ``key``."""
    fields = _bot_fields(event, key, config)
    row = next((r for r in _rows(event) if r.deduplication_key == key), None)
    row = row or _move_own_bot(event, key)
    if row is not None and row.recall_bot_id:
        row.join_at, row.meeting_url = event.start_time, event.meeting_url
        _update(row, fields, client)
    else:
        row, duty = _claim(key, event)
        if duty:
            _create(row, fields, client, adopt=duty == TAKE_OVER)
    _release(event, client, keep=row.pk)
    _forget_prefetch(event)
    return row


def _unschedule(event: CalendarEvent, client: RecallClient) -> None:
    """Detach ``event`` from its bots; each bot no other event wants is deleted at Recall."""
    _release(event, client)
    _forget_prefetch(event)


def _forget_prefetch(event: CalendarEvent) -> None:
    getattr(event, "_prefetched_objects_cache", {}).pop("self_managed_bots", None)


def _exclusive_bots(calendars: QuerySet[Calendar]) -> list[SelfManagedBot]:
    """The bots of these calendars' upcoming meetings that no other calendar uses."""
    others = CalendarEvent.objects.using(calendars.db).exclude(calendar__in=calendars)
    return list(
        SelfManagedBot.objects.using(calendars.db)
        .filter(
            events__calendar__in=calendars,
            events__end_time__gt=timezone.now(),
            recall_bot_id__isnull=False,
        )
        .exclude(events__in=others)
        .distinct()
    )


class SelfManagedBackend(SchedulingBackend):
    name = "self_managed"

    def schedule(
        self, event: CalendarEvent, key: str, config: Mapping[str, Any], client: RecallClient
    ) -> None:
        _schedule(event, key, config, client)

    def unschedule(self, event: CalendarEvent, client: RecallClient) -> None:
        _unschedule(event, client)

    def has_bot(self, event: CalendarEvent, now: datetime) -> bool:
        return _current_bot(event) is not None

    def is_current(self, event: CalendarEvent, key: str) -> bool:
        return _is_current(event, key)

    def has_bot_condition(self, prefix: str = "") -> Q:
        return Q(**{f"{prefix}self_managed_bots__recall_bot_id__isnull": False})

    def needs_distinct(self) -> bool:
        return True

    def bot_ids(self, event: CalendarEvent) -> set[UUID]:
        return {row.recall_bot_id for row in _rows(event) if row.recall_bot_id}

    def events_of_bot(self, bot_id: UUID, near: datetime) -> list[int]:
        """The events of the bot's row (a bot replaced since is no longer the events')."""
        events = CalendarEvent.objects.filter(self_managed_bots__recall_bot_id=bot_id)
        return list(events.values_list("pk", flat=True).distinct())

    def with_bot_records(self, events: QuerySet[CalendarEvent]) -> QuerySet[CalendarEvent]:
        return events.prefetch_related("self_managed_bots")

    def release_calendars(self, calendars: QuerySet[Calendar]) -> list[Any]:
        """Recall's calendar delete unschedules only its managed bots: these v1 bots are ours,
        and would still join the meetings of a calendar that is gone."""
        return _exclusive_bots(calendars)

    def remove_released(self, released: list[Any], client: RecallClient | None = None) -> None:
        for bot in released:
            client = client or RecallClient.from_settings()
            try:
                _delete_remote(client, bot.recall_bot_id)
            except RecallError as exc:
                logger.warning("Could not delete self-managed bot %s: %s", bot.recall_bot_id, exc)
            bot.delete()
