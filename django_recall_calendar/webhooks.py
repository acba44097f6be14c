"""Recall's webhooks: verify a delivery, record it once, then process it exactly once.

No HTTP framework code lives here (the view reads the body and maps exceptions to status codes), so
the view, the task, the admin and ``manage.py recall_webhooks`` all share one implementation.

Exactly once rests on two database guarantees, never on a read before a write:
- recording: the unique ``message_id`` refuses a second copy (``INSERT ... ON CONFLICT DO NOTHING``
  on PostgreSQL and SQLite, ``IntegrityError`` in a savepoint elsewhere);
- processing: a worker owns a delivery only after a conditional UPDATE moved it to ``processing``;
  a claim older than the ``WEBHOOK_CLAIM_TIMEOUT`` setting belongs to a crashed worker and can be
  taken over.

Retries: a failed delivery gets ``next_attempt_at`` from ``WEBHOOK_RETRY_DELAYS`` (one delay per
attempt; after the last one it stays failed until replayed).

This module never enqueues: the doors do (the view after :func:`record`, :mod:`.tasks` for a
retry at ``next_attempt_at``, ``manage.py recall_webhooks --retry-failed`` from cron for every due
delivery), so the domain does not depend on the task framework that calls it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import DataError, IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from svix.webhooks import Webhook, WebhookVerificationError

from . import calendars, conf, leases, outcomes
from .budget import BudgetExhausted
from .models import Calendar, DeliveryStatus, WebhookDelivery
from .utils import parse_datetime_or_none, parse_uuid

logger = logging.getLogger(__name__)

CALENDAR_UPDATE = "calendar.update"
CALENDAR_SYNC_EVENTS = "calendar.sync_events"

#: Stored error texts are cut to this length (a traceback-sized message helps nobody in a list).
MAX_ERROR_LENGTH = 2000

SIGNATURE_HEADERS = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
)
_MESSAGE_ID_MAX = WebhookDelivery._meta.get_field("message_id").max_length
_EVENT_TYPE_MAX = WebhookDelivery._meta.get_field("event_type").max_length


class WebhookRejected(Exception):
    """Refused: bad or missing signature, malformed headers, or not Recall's envelope."""


class WebhookNotConfigured(Exception):
    """No usable webhook secret: every delivery is refused until one is configured."""


@dataclass(frozen=True)
class VerifiedDelivery:
    """A delivery whose signature matched one of the configured secrets."""

    message_id: str
    payload: dict[str, Any]
    #: The body as text, stored as the payload as it is: serialising the parsed payload again (and
    #: psycopg's ``Jsonb`` wrapping) cost 12-20 µs per delivery.
    body: str

    @property
    def event_type(self) -> str:
        return self.payload["event"]


# -- verify ----------------------------------------------------------------------------------------


def signature_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``webhook-*`` / legacy ``svix-*`` headers among ``headers``, with lower-case names."""
    return {
        name.lower(): value for name, value in headers.items() if name.lower() in SIGNATURE_HEADERS
    }


def _verifiers() -> list[Webhook]:
    """A svix verifier per configured secret (several while rotating); unusable ones are logged."""
    verifiers = []
    for index, secret in enumerate(conf.webhook_secrets()):
        try:
            verifiers.append(Webhook(secret))
        except Exception as exc:  # svix raises several types for a malformed secret
            logger.error(
                "RECALL_CALENDAR['WEBHOOK_SECRET'] entry %d is not a usable whsec_ secret (%s); "
                "run manage.py check.",
                index,
                type(exc).__name__,
            )
    return verifiers


def verify(body: bytes, headers: Mapping[str, str]) -> VerifiedDelivery:
    """Check the signature of the raw ``body`` against each secret, then parse the envelope.

    Raises WebhookNotConfigured when no secret is usable, WebhookRejected (with a reason) otherwise.
    svix enforces its 5-minute timestamp tolerance in both directions.
    """
    verifiers = _verifiers()
    if not verifiers:
        raise WebhookNotConfigured(
            "RECALL_CALENDAR['WEBHOOK_SECRET'] is not set to a usable whsec_ secret, so every "
            "webhook delivery is refused (Recall retries them once it is set)."
        )
    present = signature_headers(headers)
    reason = ""
    for verifier in verifiers:
        try:
            verifier.verify(body, present)
            break
        except WebhookVerificationError as exc:
            reason = str(exc) or "Invalid signature"
        except ValueError as exc:  # malformed signature entries, bad base64, a non-UTF-8 body
            reason = f"Malformed signature headers or body ({type(exc).__name__})"
    else:
        raise WebhookRejected(reason)
    # svix reads svix-* before webhook-*; the id we store must be the one that was signed.
    message_id = present.get("svix-id") or present["webhook-id"]
    if len(message_id) > _MESSAGE_ID_MAX:
        raise WebhookRejected(f"Message id is longer than {_MESSAGE_ID_MAX} characters")
    text = _json_text(body)
    return VerifiedDelivery(message_id=message_id, payload=parse_envelope(text), body=text)


def _json_text(body: bytes) -> str:
    """The body as text: UTF-8, as JSON between systems must be (RFC 8259), without a byte order
    mark (a JSON reader may skip one; PostgreSQL's jsonb and SQLite's JSON_VALID refuse it)."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WebhookRejected("Body is not UTF-8") from None


class _NotStandardJson(ValueError):
    """A number JSON has no way to write: NaN, Infinity or one too large for a float."""


def _refuse_constant(name: str) -> float:
    raise _NotStandardJson(f"Body is not standard JSON ({name} is not a JSON number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotStandardJson(f"Body is not standard JSON ({text[:30]} is too large a number)")
    return value


def parse_envelope(body: str) -> dict[str, Any]:
    """Recall's ``{"event": str, "data": {...}}`` envelope, or WebhookRejected.

    Strict JSON: Python's reader takes NaN and Infinity (and turns 1e400 into Infinity), which
    neither the JSON column of SQLite nor PostgreSQL's jsonb stores, so storing would fail late."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotStandardJson as exc:
        raise WebhookRejected(str(exc)) from None
    except (ValueError, RecursionError):
        raise WebhookRejected("Body is not JSON") from None
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("event"), str)
        and isinstance(payload.get("data"), dict)
    ):
        raise WebhookRejected('Body is not Recall\'s {"event": "...", "data": {...}} envelope')
    if len(payload["event"]) > _EVENT_TYPE_MAX:
        raise WebhookRejected(f"Event type is longer than {_EVENT_TYPE_MAX} characters")
    return payload


# -- record ----------------------------------------------------------------------------------------


def _calendar_ids(data: Mapping[str, Any]) -> tuple[str, UUID | None]:
    """``data.calendar_id`` as stored (canonical UUID form when it is one, else as given, cut to
    fit), and as the UUID that links the calendar (None when it is not one: no calendar has it)."""
    value = data.get("calendar_id")
    if not isinstance(value, str):
        return "", None
    recall_id = parse_uuid(value)
    return (str(recall_id), recall_id) if recall_id else (value[:64], None)


def _find_calendar(calendar_recall_id: str) -> Calendar | None:
    recall_id = parse_uuid(calendar_recall_id)
    return Calendar.objects.filter(recall_id=recall_id).first() if recall_id else None


@dataclass(frozen=True)
class Recorded:
    """A delivery just stored: enough to answer and to enqueue it, without loading the row."""

    pk: int
    status: str
    using: str


def record(verified: VerifiedDelivery) -> Recorded | None:
    """Store a verified delivery; the caller hands one still ``received`` to a worker.

    Returns None for a copy of an already stored delivery (the unique message id decided), which is
    not processed again. Event types the app does not handle are stored ``ignored`` at once.
    """
    now = timezone.now()
    calendar_recall_id, recall_id = _calendar_ids(verified.payload["data"])
    values = {
        "message_id": verified.message_id,
        "event_type": verified.event_type,
        "payload": verified.payload,
        "calendar_recall_id": calendar_recall_id,
        "status": DeliveryStatus.RECEIVED,
        "received_at": now,
    }
    if not handles(verified.event_type):
        values["status"] = DeliveryStatus.IGNORED
        values["last_error"] = _unsupported(verified.event_type)
        values["processed_at"] = now
    connection = connections[router.db_for_write(WebhookDelivery)]
    try:
        if connection.in_atomic_block:  # a savepoint keeps a refused row from failing the caller's
            with transaction.atomic(using=connection.alias):
                pk = _insert_once(values, verified.body, recall_id, connection)
        else:  # autocommit: the one statement commits on its own
            pk = _insert_once(values, verified.body, recall_id, connection)
    except (DataError, IntegrityError):
        # DataError: JSON the database cannot hold (PostgreSQL's jsonb refuses a NUL character).
        # IntegrityError: SQLite's JSON_VALID check refusing JSON nested deeper than it reads
        # (1,000 levels from SQLite 3.45; Python reads about 1,500). A copy never raises: the
        # insert skips it, or the fallback catches its own.
        raise WebhookRejected("Payload cannot be stored") from None
    return None if pk is None else Recorded(pk, values["status"], connection.alias)


def _insert_once(
    values: dict[str, Any], body: str, recall_id: UUID | None, connection: BaseDatabaseWrapper
) -> int | None:
    """Insert a delivery with ``values`` unless its message id is stored; its pk, or None.

    One ``INSERT ... ON CONFLICT (message_id) DO NOTHING RETURNING`` (PostgreSQL, SQLite >= 3.35):
    the unique constraint decides, a copy costs neither an error nor a second query, and the
    calendar with ``recall_id`` is linked by a subquery in the same statement. The payload is the
    signed ``body`` as sent (it parses to ``values["payload"]``). Other databases: ``create`` in a
    savepoint, the unique constraint deciding through ``IntegrityError``. No model instance is
    built on the fast path: that and compiling the statement were a fifth of the request.
    """
    if connection.vendor not in ("postgresql", "sqlite") or not (
        connection.features.can_return_columns_from_insert
    ):
        delivery = WebhookDelivery(**values, calendar=_find_calendar(values["calendar_recall_id"]))
        try:
            with transaction.atomic(using=connection.alias):
                delivery.save(force_insert=True, using=connection.alias)
        except IntegrityError:
            return None
        return delivery.pk
    with _binding_cursor(connection) as cursor:
        sql, fields = _insert_statement(connection, tuple(values), values["status"])
        params = [
            body
            if field.name == "payload"
            else field.get_db_prep_save(
                values[field.name] if field.name in values else field.get_default(), connection
            )
            for field in fields
        ]
        params.append(_RECALL_ID.get_db_prep_value(recall_id, connection))
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def _binding_cursor(connection: BaseDatabaseWrapper) -> Any:
    """A cursor that sends the parameters apart from the statement (psycopg 3), else the usual one.

    Django's psycopg cursors bind client-side: every statement is quoted in Python and parsed and
    planned by PostgreSQL anew. Bound server-side, the insert-once statement is prepared once per
    connection when the host enables prepared statements (``OPTIONS["prepare_threshold"]``, which
    Django leaves off for connection poolers); prepared, it cost 85 µs less per delivery here. The
    cursor is wrapped by Django's own ``_prepare_cursor`` (its ``cursor()`` minus the factory), so
    the thread-sharing check, query logging and execute wrappers all apply.

    The psycopg cursor is kept for the connection's next delivery (not closed on leaving the
    ``with``): a new one and its closing cost 20-30 µs per delivery, its adapters looked up anew.
    It is kept only with the connection it was opened on, and not while Django shares the
    connection between threads (two threads would read each other's row).
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql import base

    if not base.is_psycopg3:
        return connection.cursor()

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    if connection.allow_thread_sharing:  # a cursor of its own, closed on leaving the ``with``
        with connection.wrap_database_errors:
            return connection._prepare_cursor(base.ServerBindingCursor(connection.connection))
    cursor = getattr(connection, _KEPT_CURSOR, None)
    if cursor is None or cursor.connection is not connection.connection:
        with connection.wrap_database_errors:
            cursor = base.ServerBindingCursor(connection.connection)
        setattr(connection, _KEPT_CURSOR, cursor)
    return nullcontext(connection._prepare_cursor(cursor))


#: The attribute of a Django connection that keeps its insert-once cursor (psycopg 3).
_KEPT_CURSOR = "_recall_calendar_insert_cursor"
_RECALL_ID = Calendar._meta.get_field("recall_id")
_INSERT_STATEMENTS: dict[tuple[str, tuple[str, ...], str], tuple[str, list]] = {}


def _insert_statement(
    connection: BaseDatabaseWrapper, given: tuple[str, ...], status: str
) -> tuple[str, list]:
    """The insert-once SQL for ``connection``'s database and a delivery stored with ``status``,
    built once, and the fields whose values it takes as parameters (those ``given`` and those
    whose default is computed). The status and the other columns' defaults are our own constants,
    never input, so they are written in the SQL, quoted by Django's schema editor (which quotes
    defaults, not user input): six parameters instead of thirteen to prepare, dump and send cost
    5-10 µs less per delivery. The payload is cast from the body's text, which the database
    parses as it parsed the JSON Django serialised."""
    key = (connection.vendor, given, status)
    if key not in _INSERT_STATEMENTS:
        meta, quote = WebhookDelivery._meta, connection.ops.quote_name
        columns = [
            f for f in meta.local_concrete_fields if f is not meta.pk and f.name != "calendar"
        ]
        fields = [
            f
            for f in columns
            if f.name != "status" and (f.name in given or (f.has_default() and callable(f.default)))
        ]
        constants = [f for f in columns if f not in fields]
        quote_value = connection.schema_editor().quote_value
        literals = [
            quote_value(
                f.get_db_prep_save(status if f.name == "status" else f.get_default(), connection)
            )
            for f in constants
        ]
        placeholders = [
            f"CAST(%s AS {f.db_type(connection)})" if f.name == "payload" else "%s" for f in fields
        ]
        calendar_meta = Calendar._meta
        calendar_pk = (
            f"(SELECT {quote(calendar_meta.pk.column)} FROM {quote(calendar_meta.db_table)} "
            f"WHERE {quote(_RECALL_ID.column)} = %s)"
        )
        sql = (
            f"INSERT INTO {quote(meta.db_table)} "
            f"({', '.join(quote(f.column) for f in fields + constants)}, "
            f"{quote(meta.get_field('calendar').column)}) "
            f"VALUES ({', '.join(placeholders + literals)}, {calendar_pk}) "
            f"ON CONFLICT ({quote(meta.get_field('message_id').column)}) DO NOTHING "
            f"RETURNING {quote(meta.pk.column)}"
        )
        _INSERT_STATEMENTS[key] = (sql, fields)
    return _INSERT_STATEMENTS[key]


def _unsupported(event_type: str) -> str:
    return f"Event type {event_type!r} is not handled by this app."


# -- process ---------------------------------------------------------------------------------------


def _claimable(now: datetime, *, force: bool = False) -> Q:
    """Rows a worker may claim: new, due for a retry, or claimed by a worker that died.

    ``force`` (a replay) also takes processed, ignored and not-yet-due failed rows.
    """
    stale = Q(
        status=DeliveryStatus.PROCESSING,
        claimed_at__lt=now - conf.duration("WEBHOOK_CLAIM_TIMEOUT"),
    )
    if force:
        return ~Q(status=DeliveryStatus.PROCESSING) | stale
    due = Q(status=DeliveryStatus.FAILED, next_attempt_at__lte=now)
    return Q(status=DeliveryStatus.RECEIVED) | due | stale


def _claim(queryset: QuerySet, now: datetime, *, force: bool = False, **changes: Any) -> int:
    """Move the claimable rows of ``queryset`` to ``processing`` in one conditional UPDATE."""
    return queryset.filter(_claimable(now, force=force)).update(
        status=DeliveryStatus.PROCESSING,
        attempts=F("attempts") + 1,
        claimed_at=now,
        next_attempt_at=None,
        **changes,
    )


def _group(delivery: WebhookDelivery, now: datetime) -> QuerySet:
    """The delivery plus the ones it claimed to coalesce, while this worker's claim holds.

    The claim time is the token: a worker that ran past ``WEBHOOK_CLAIM_TIMEOUT`` and was taken
    over finds its claim replaced and overwrites nothing the new owner does.
    """
    return WebhookDelivery.objects.filter(
        Q(pk=delivery.pk, claimed_at=now)
        | Q(processed_by=delivery, status=DeliveryStatus.PROCESSING, claimed_at=now)
    )


class _SweepInFlight(Exception):
    """Another worker holds the workspace sweep's lease: it serves this delivery after its sweep."""


def process_delivery(delivery_id: int, *, force: bool = False) -> str:
    """Claim and process one delivery; returns its status afterwards.

    Never raises for a processing error: the row records it (the ImmediateBackend swallows task
    exceptions, so the row is the only truthful record). A delivery another worker holds, or one
    already done, is left alone (``force`` reprocesses a done one).

    ``calendar.sync_events`` deliveries are served by workspace sweeps, one at a time for the whole
    site (a lease in the database): a worker that finds a sweep in flight hands its delivery back
    to it, and every sweeper looks again for deliveries that arrived meanwhile once it is done.
    """
    rows = WebhookDelivery.objects.filter(pk=delivery_id)
    status, sweeps = _process_one(delivery_id, force=force)
    if sweeps:
        _serve_waiting_syncs()
        status = rows.values_list("status", flat=True).first() or status
    return status


def _serve_waiting_syncs() -> None:
    """Sweep while ``sync_events`` deliveries wait and no other worker is sweeping.

    Called after a sweep (deliveries that arrived during it) and after a hand-back (the sweep in
    flight may have looked before this delivery was handed back): whoever holds the lease next
    looks again, so no waiting delivery is left behind.
    """
    now = timezone.now()
    waiting = WebhookDelivery.objects.filter(
        Q(status=DeliveryStatus.RECEIVED, next_attempt_at=None)
        | Q(status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED], next_attempt_at__lte=now),
        event_type=CALENDAR_SYNC_EVENTS,
    )
    for _ in range(100):  # bounded; the rest is for the next delivery's worker or cron
        next_id = waiting.order_by("received_at", "pk").values_list("pk", flat=True).first()
        if next_id is None:
            return
        _, sweeps = _process_one(next_id)
        if not sweeps or _handed_back(next_id):
            return


def _process_one(delivery_id: int, *, force: bool = False) -> tuple[str, bool]:
    """Process one delivery; its status, and whether it was a ``sync_events`` (a sweep's)."""
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(pk=delivery_id)
    if not _claim(rows, now, force=force, processed_by=None):
        return rows.values_list("status", flat=True).first() or "", False
    delivery = WebhookDelivery.objects.select_related("calendar").get(pk=delivery_id)
    if delivery.event_type in outcomes.EVENT_TYPES:
        return _process_bot_report(delivery, now), False
    handler = HANDLERS.get(delivery.event_type)
    calendar = delivery.calendar or _find_calendar(delivery.calendar_recall_id)
    sweeps = delivery.event_type == CALENDAR_SYNC_EVENTS
    if handler is None:
        status = _finish(delivery, now, DeliveryStatus.IGNORED, _unsupported(delivery.event_type))
        return status, False
    if calendar is None:
        reason = f"Unknown calendar {delivery.calendar_recall_id!r}."
        return _finish(delivery, now, DeliveryStatus.IGNORED, reason), sweeps
    try:
        handler(delivery, calendar, now)
    except _SweepInFlight:
        return _hand_back(delivery, now), sweeps
    except BudgetExhausted as exc:
        return _defer(delivery, now, exc), sweeps
    except Exception as exc:
        return _fail(delivery, now, exc), sweeps
    return _finish(delivery, now, DeliveryStatus.PROCESSED, "", calendar=calendar), sweeps


def _process_bot_report(delivery: WebhookDelivery, now: datetime) -> str:
    """A ``bot.<status>`` delivery: no calendar is named, the bot's own row is updated."""
    try:
        report = outcomes.parse_report(delivery.event_type, delivery.payload.get("data") or {})
    except outcomes.InvalidReport as exc:
        return _finish(delivery, now, DeliveryStatus.IGNORED, str(exc))
    try:
        outcomes.apply_report(report)
    except Exception as exc:
        return _fail(delivery, now, exc)
    return _finish(delivery, now, DeliveryStatus.PROCESSED, "")


def _finish(
    delivery: WebhookDelivery,
    now: datetime,
    status: str,
    reason: str,
    calendar: Calendar | None = None,
) -> str:
    changes: dict[str, Any] = {
        "status": status,
        "last_error": reason,
        "processed_at": timezone.now(),
    }
    if calendar is not None:
        changes["calendar"] = calendar
    _group(delivery, now).update(**changes)
    return status


def _fail(delivery: WebhookDelivery, now: datetime, exc: Exception) -> str:
    """Record the failure on the delivery (and those it coalesced) and when to retry it."""
    delays = conf.get("WEBHOOK_RETRY_DELAYS")
    next_attempt_at = None
    if delivery.attempts <= len(delays):
        next_attempt_at = now + timedelta(seconds=delays[delivery.attempts - 1])
    # RecallError messages carry Recall's answer only, never our credentials.
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    logger.warning(
        "Webhook delivery %s (%s) failed on attempt %d: %s",
        delivery.message_id,
        delivery.event_type,
        delivery.attempts,
        error,
    )
    _group(delivery, now).update(
        status=DeliveryStatus.FAILED,
        last_error=error,
        next_attempt_at=next_attempt_at,
        processed_by=None,
    )
    return DeliveryStatus.FAILED


def _defer(delivery: WebhookDelivery, now: datetime, exc: BudgetExhausted) -> str:
    """Hand the delivery (and those it coalesced) back, due when Recall's budget has a token.

    Not a failure: the attempt is not counted, and whatever the sync applied stays applied.
    """
    logger.info("Webhook delivery %s deferred: %s", delivery.message_id, exc)
    _group(delivery, now).update(
        status=DeliveryStatus.RECEIVED,
        attempts=F("attempts") - 1,
        last_error=f"Deferred: {exc.message}"[:MAX_ERROR_LENGTH],
        next_attempt_at=exc.retry_at,
        claimed_at=None,
        processed_by=None,
    )
    return DeliveryStatus.RECEIVED


def _refresh_calendar(delivery: WebhookDelivery, calendar: Calendar, now: datetime) -> None:
    calendars.refresh_and_reconcile(calendar)


def _hand_back(delivery: WebhookDelivery, now: datetime) -> str:
    """Return a claimed delivery to ``received`` untouched (not an attempt) for the sweep."""
    _group(delivery, now).update(
        status=DeliveryStatus.RECEIVED,
        attempts=F("attempts") - 1,
        claimed_at=None,
        processed_by=None,
    )
    return DeliveryStatus.RECEIVED


def _handed_back(delivery_id: int) -> bool:
    return WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.RECEIVED, claimed_at=None
    ).exists()


def _sync_events(delivery: WebhookDelivery, calendar: Calendar, now: datetime) -> None:
    """Serve this delivery and every other waiting ``sync_events`` of the workspace with one sweep.

    A burst of changes across many calendars sends a burst of deliveries; claiming every waiting
    one in one UPDATE and listing the workspace's events once from the earliest
    ``last_updated_ts`` among them costs one Recall call per page of changes, not one per
    calendar (a single calendar waiting gets its own listing). The lease makes it one sweep at a
    time for the site; its time to live is ``WEBHOOK_CLAIM_TIMEOUT``, the bound the claims of a
    crashed sweeper already have.
    """
    held = leases.acquire(leases.SWEEP, conf.duration("WEBHOOK_CLAIM_TIMEOUT"))
    if held is None:
        raise _SweepInFlight
    try:
        pending = WebhookDelivery.objects.filter(event_type=CALENDAR_SYNC_EVENTS).exclude(
            pk=delivery.pk
        )
        _claim(pending, now, processed_by=delivery)
        others = list(
            _group(delivery, now)
            .exclude(pk=delivery.pk)
            .only("pk", "calendar_id", "calendar_recall_id", "payload")
        )
        payloads = _payloads_by_calendar(delivery, calendar, others, now)
        since = {cal: _earliest_last_updated(found) for cal, found in payloads.items()}
        if len(since) == 1:
            calendars.sync_changes(calendar, since[calendar])
        else:
            calendars.sync_workspace_changes(since)
        _group(delivery, now).exclude(pk=delivery.pk).update(
            status=DeliveryStatus.PROCESSED, last_error="", processed_at=timezone.now()
        )
    finally:
        held.release()


def _payloads_by_calendar(
    delivery: WebhookDelivery, calendar: Calendar, others: list[WebhookDelivery], now: datetime
) -> dict[Calendar, list[dict[str, Any]]]:
    """The claimed deliveries' payloads per local calendar; those of calendars this app does
    not know are finished ``ignored`` here (one UPDATE), as a lone one would be."""
    known = {calendar.pk: calendar}
    missing = {d.calendar_recall_id for d in others if d.calendar_id is None}
    by_recall_id = {
        str(found.recall_id): found
        for found in Calendar.objects.filter(
            recall_id__in=[rid for rid in map(parse_uuid, missing) if rid]
        )
    }
    needed = {d.calendar_id for d in others if d.calendar_id} - set(known)
    known.update(Calendar.objects.in_bulk(list(needed)))
    payloads: dict[Calendar, list[dict[str, Any]]] = {calendar: [delivery.payload]}
    unknown, adopted = [], {}
    for other in others:
        owner = known.get(other.calendar_id) or by_recall_id.get(other.calendar_recall_id)
        if owner is None:
            unknown.append(other.pk)
            continue
        if other.calendar_id is None:
            adopted.setdefault(owner.pk, []).append(other.pk)
        payloads.setdefault(owner, []).append(other.payload)
    group = _group(delivery, now)
    if unknown:
        group.filter(pk__in=unknown).update(
            status=DeliveryStatus.IGNORED,
            last_error="Unknown calendar.",
            processed_at=timezone.now(),
            processed_by=None,
        )
    for owner_pk, pks in adopted.items():
        group.filter(pk__in=pks).update(calendar_id=owner_pk)
    return payloads


def _earliest_last_updated(payloads: list[dict[str, Any]]) -> datetime | None:
    """The earliest ``last_updated_ts``; None (sync from the watermark) when any lacks one."""
    stamps = [
        parse_datetime_or_none(payload["data"].get("last_updated_ts")) for payload in payloads
    ]
    if any(stamp is None for stamp in stamps):
        return None
    return min(stamps)


#: Handlers of the calendar events, each given the calendar the delivery names.
HANDLERS: dict[str, Callable[[WebhookDelivery, Calendar, datetime], None]] = {
    CALENDAR_UPDATE: _refresh_calendar,
    CALENDAR_SYNC_EVENTS: _sync_events,
}


def handles(event_type: str) -> bool:
    """Whether deliveries of ``event_type`` are processed (calendar events and bot statuses)."""
    return event_type in HANDLERS or event_type in outcomes.EVENT_TYPES


# -- operations (manage.py recall_webhooks, admin) -------------------------------------------------


def due_deliveries(now: datetime | None = None) -> QuerySet:
    """Deliveries that need a worker: failed and due, stale claims, and old never-enqueued ones."""
    now = now or timezone.now()
    expired = now - conf.duration("WEBHOOK_CLAIM_TIMEOUT")
    lost = Q(status=DeliveryStatus.RECEIVED, received_at__lt=expired)
    due = Q(status=DeliveryStatus.FAILED, next_attempt_at__lte=now)
    stale = Q(status=DeliveryStatus.PROCESSING, claimed_at__lt=expired)
    return WebhookDelivery.objects.filter(lost | due | stale).order_by("received_at", "pk")


def retry_time(delivery_id: int) -> datetime | None:
    """When a failed or deferred delivery is due again (None: neither, or out of retries)."""
    waiting = (DeliveryStatus.FAILED, DeliveryStatus.RECEIVED)
    return (
        WebhookDelivery.objects.filter(pk=delivery_id, status__in=waiting)
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def adopt_deliveries(calendar: Calendar) -> list[int]:
    """Make the deliveries that arrived for ``calendar`` before its local row existed due again.

    Recall can announce a new calendar (``calendar.update``) before the connect flow has committed
    its row here; such deliveries were stored ``ignored`` as for an unknown calendar. Called when a
    calendar is first saved; returns the ids of the deliveries now ``received``, for a worker.
    """
    orphans = WebhookDelivery.objects.filter(
        calendar_recall_id=str(calendar.recall_id),
        calendar=None,
        status=DeliveryStatus.IGNORED,
        event_type__in=list(HANDLERS),
    )
    ids = list(orphans.values_list("pk", flat=True))
    if ids:
        WebhookDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.IGNORED).update(
            status=DeliveryStatus.RECEIVED, calendar=calendar, last_error="", processed_at=None
        )
    return ids
