"""Bot outcomes: what Recall's bot webhooks say a bot did, kept once per bot for every meeting.

A ``bot.<status>`` delivery names the bot, not the meeting. The meetings it serves are found
through the scheduling backend (the ``bots`` lists of managed scheduling, the
:class:`~.models.SelfManagedBot` rows of self-managed scheduling), and each of them points to the
bot's one :class:`~.models.BotOutcome` row: a bot shared by several users' copies of a meeting is
recorded once and shown on each copy.

Deliveries come in no promised order and may come late: a status moves a bot forward only
(:func:`.bot_status.is_newer`), "recorded" is never forgotten, and the reason of a failure is the
strongest one reported (:data:`.bot_status.FAILURE_STRENGTH`), so the same deliveries in any order
leave the same row. Whether a bot failed is only decided when it ends (``done`` or ``fatal``), and
then from Recall's own record of the bot (its ``status_changes``, one ``GET /api/v1/bot/{id}/``
per ending): a ``bot.in_call_recording`` still on its way must not leave a recorded meeting marked
failed, nor send the host a false ``bot_failed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from . import bot_status, signals
from .backends import get_backend
from .client import RecallClient
from .exceptions import RecallNotFoundError
from .models import BotOutcome, BotResult, BotStatus, CalendarEvent
from .utils import parse_datetime_or_none, parse_uuid

#: ``bot.<status>`` event types this app processes; ``bot.status_change`` (the legacy shape of the
#: same news) and the ``bot.log`` family are stored and ignored.
EVENT_TYPES = frozenset(f"bot.{status}" for status in BotStatus.values)

#: Entries of a bot's ``history`` kept (a bot paused and resumed many times stops growing it).
MAX_HISTORY = 50

_SUB_CODE_MAX = BotOutcome._meta.get_field("sub_code").max_length


class InvalidReport(ValueError):
    """A bot delivery without a usable bot id or time: nothing can be recorded from it."""


@dataclass(frozen=True)
class BotReport:
    """One bot webhook, checked: which bot, which status, its sub-code and when."""

    bot_id: uuid.UUID
    status: str
    sub_code: str
    at: datetime
    metadata: dict[str, Any]

    def as_history(self) -> dict[str, str]:
        return {"status": self.status, "sub_code": self.sub_code, "at": self.at.isoformat()}


def parse_report(event_type: str, data: Mapping[str, Any]) -> BotReport:
    """The report of a ``bot.<status>`` delivery's ``data``, or InvalidReport saying what is
    missing. The event type names the status; ``data.data.code`` repeats it."""
    status = event_type.removeprefix("bot.")
    if event_type not in EVENT_TYPES:
        raise InvalidReport(f"{event_type!r} is not a bot status this app knows.")
    bot = data.get("bot") if isinstance(data.get("bot"), dict) else {}
    bot_id = parse_uuid(bot.get("id"))
    if bot_id is None:
        raise InvalidReport("The delivery names no bot (data.bot.id is not a UUID).")
    details = data.get("data") if isinstance(data.get("data"), dict) else {}
    at = parse_datetime_or_none(details.get("updated_at"))
    if at is None:
        raise InvalidReport("The delivery has no time (data.data.updated_at).")
    sub_code = details.get("sub_code")
    metadata = bot.get("metadata")
    return BotReport(
        bot_id=bot_id,
        status=status,
        sub_code=sub_code[:_SUB_CODE_MAX] if isinstance(sub_code, str) else "",
        at=at,
        metadata=metadata if isinstance(metadata, dict) else {},
    )


@dataclass(frozen=True)
class Change:
    """What one report changed: the bot's status before, and its result before."""

    previous_status: str
    previous_result: str

    def moved(self, outcome: BotOutcome) -> bool:
        return (self.previous_status, self.previous_result) != (outcome.status, outcome.result)


def apply_report(report: BotReport, *, client: RecallClient | None = None) -> BotOutcome:
    """Record ``report`` on its bot's row, point the bot's meetings at it, then tell the host
    (:mod:`.signals`) when the bot moved on. Safe to repeat: the same report changes nothing.

    A report of the bot's end brings Recall's whole record of the bot along (read before the row
    is locked, so no lock waits on Recall); a failure to read it raises, and the delivery is
    retried like any other.
    """
    reports = [report]
    if report.status in bot_status.ENDINGS:
        reports += recalls_record(report, client or RecallClient.from_settings())
    with transaction.atomic():
        outcome, created = _locked_outcome(report)
        change = Change("" if created else outcome.status, "" if created else outcome.result)
        for each in reports:
            _merge(outcome, each, created and each is report)
        outcome.save()
        _link(outcome, report)
    if change.moved(outcome):
        _announce(outcome, change)
    return outcome


def recalls_record(report: BotReport, client: RecallClient) -> list[BotReport]:
    """The bot's ``status_changes`` at Recall as reports ([] when Recall no longer has the bot)."""
    try:
        bot = client.retrieve_bot(report.bot_id)
    except RecallNotFoundError:
        return []
    reports = []
    for change in bot.get("status_changes") or []:
        if not isinstance(change, dict) or f"bot.{change.get('code')}" not in EVENT_TYPES:
            continue  # "ready" and codes this app does not know
        at = parse_datetime_or_none(change.get("created_at"))
        if at is not None:
            sub_code = change.get("sub_code")
            reports.append(
                BotReport(
                    report.bot_id,
                    change["code"],
                    sub_code[:_SUB_CODE_MAX] if isinstance(sub_code, str) else "",
                    at,
                    report.metadata,
                )
            )
    return reports


def _locked_outcome(report: BotReport) -> tuple[BotOutcome, bool]:
    """The bot's row, locked until the transaction ends (two workers never merge into stale
    copies), or a new unsaved-yet row; two first deliveries racing meet on the unique bot id."""
    for _ in range(2):
        found = BotOutcome.objects.select_for_update().filter(recall_bot_id=report.bot_id).first()
        if found is not None:
            return found, False
        fresh = BotOutcome(
            recall_bot_id=report.bot_id,
            status=report.status,
            status_at=report.at,
            first_status_at=report.at,
        )
        try:
            with transaction.atomic():
                fresh.save(force_insert=True)
        except IntegrityError:
            continue  # another worker created it meanwhile: lock theirs
        return fresh, True
    raise IntegrityError(f"Bot outcome {report.bot_id} could not be created or read.")


def _merge(outcome: BotOutcome, report: BotReport, created: bool) -> None:
    """Fold ``report`` into the row: history, current status (forward only), recorded, failure."""
    entry = report.as_history()
    if _history_key(entry) not in {_history_key(known) for known in outcome.history}:
        history = sorted([*outcome.history, entry], key=lambda item: item["at"])
        outcome.history = history[-MAX_HISTORY:]
    if created or bot_status.is_newer(report.status, report.at, outcome.status, outcome.status_at):
        outcome.status, outcome.sub_code, outcome.status_at = (
            report.status,
            report.sub_code,
            report.at,
        )
    outcome.first_status_at = min(outcome.first_status_at, report.at)
    outcome.recorded = outcome.recorded or report.status == BotStatus.IN_CALL_RECORDING
    strength = bot_status.FAILURE_STRENGTH.get(report.status, 0)
    if strength > bot_status.FAILURE_STRENGTH.get(outcome.failure_status, 0):
        outcome.failure_status, outcome.failure_sub_code = report.status, report.sub_code
    if report.metadata:
        outcome.metadata = report.metadata
    outcome.result = bot_status.result(outcome.status, outcome.recorded)


def _history_key(entry: dict[str, str]) -> tuple[str, str, str]:
    """A history entry's identity: a webhook and Recall's record of the same status may differ
    below the second."""
    return entry["status"], entry["sub_code"], entry["at"][:19]


def _link(outcome: BotOutcome, report: BotReport) -> None:
    """Point every meeting the bot serves at its row, unless a meeting already shows a bot that
    started later (a new bot sent after this one failed keeps the meeting)."""
    found = get_backend().events_of_bot(report.bot_id, report.at)
    if not found:
        return
    CalendarEvent.objects.filter(pk__in=found).filter(
        Q(bot_outcome__isnull=True)
        | Q(bot_outcome=outcome)
        | Q(bot_outcome__first_status_at__lt=outcome.first_status_at)
    ).update(bot_outcome=outcome)


def link_events(events: Iterable[tuple[uuid.UUID, list]]) -> int:
    """Point synced meetings, given as (Recall id, ``bots`` list) pairs, at the outcomes of the
    bots their lists name.

    A bot's webhooks can arrive before the sync that lists the bot on a meeting; the outcome is
    kept by bot id meanwhile and joined here. One query when no listed bot has reported.
    """
    by_bot: dict[uuid.UUID, list[uuid.UUID]] = {}
    for recall_id, bots in events:
        for entry in bots or []:
            bot_id = parse_uuid(entry.get("bot_id")) if isinstance(entry, dict) else None
            if bot_id is not None:
                by_bot.setdefault(bot_id, []).append(recall_id)
    if not by_bot:
        return 0
    linked = 0
    for outcome in BotOutcome.objects.filter(recall_bot_id__in=by_bot):
        linked += (
            CalendarEvent.objects.filter(recall_id__in=by_bot[outcome.recall_bot_id])
            .filter(
                Q(bot_outcome__isnull=True)
                | Q(bot_outcome__first_status_at__lt=outcome.first_status_at)
            )
            .update(bot_outcome=outcome)
        )
    return linked


def _announce(outcome: BotOutcome, change: Change) -> None:
    """Send the host's signals for a bot that moved on (after the row is committed)."""
    events = list(CalendarEvent.objects.filter(bot_outcome=outcome).select_related("calendar"))
    reason = bot_status.describe(outcome)
    if outcome.status != change.previous_status:
        signals.bot_status_changed.send(
            sender=BotOutcome,
            outcome=outcome,
            events=events,
            status=outcome.status,
            previous_status=change.previous_status,
            description=reason,
        )
    if outcome.status == BotStatus.DONE and change.previous_status != BotStatus.DONE:
        signals.bot_done.send(
            sender=BotOutcome, outcome=outcome, events=events, recorded=outcome.recorded
        )
    if outcome.result == BotResult.FAILED and change.previous_result != BotResult.FAILED:
        signals.bot_failed.send(sender=BotOutcome, outcome=outcome, events=events, reason=reason)
