"""RecallEmulator: Recall's API on a local port, with controls for tests and the demo.

One lock guards the workspace; webhooks are delivered after it is released, because a receiver calls
the API back while it handles a delivery. With ``unruly=False``, deliveries caused by a test's
control call happen at once in the calling thread (so a Django test's transaction sees them); those
caused by an API request go to a queue, sent by a background thread to a URL target, or by
``deliver_pending()`` to a callable (with no target, every delivery is only recorded, at once).

Recall's habits are on by default, each with a switch for deterministic tests:

- ``unruly=True``: every webhook is queued, held a random moment, sometimes sent twice, sent in no
  particular order, and retried on Svix's schedule when refused (see ``delivery``); event listings
  come in no particular order and ``last_updated_ts`` is earlier than the change it announces. A
  callable target (in-process Django) receives them on ``deliver_pending()`` or ``settle()``.
- ``rate_limits=True``: the ``x-throttles`` limits per workspace, 429 with ``Retry-After``.
- ``time_scale``: emulated seconds per real second for every wait the emulator imposes (a minute of
  rate limit, Svix's retries, an hour of idempotency); Retry-After is given in real seconds.
- ``strict=False``: ``bot_config`` is checked against the Create Bot schema; strict also refuses
  keys the schema does not know.
- Always: ``Idempotency-Key`` on POST/PUT/PATCH, deduplication onto bots not yet started.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from .api import RecallApi
from .clock import TimeScale, parse_ts
from .delivery import DeliveryQueue, UnrulyOptions
from .demo_data import finished_meetings_of, working_week_of
from .errors import ApiError
from .faults import AFTER_HANDLING, Fault, FaultInjector, fault_response
from .idempotency import IdempotencyStore
from .oauth import OAuthProvider
from .server import EmulatorHTTPServer, Request, Response, Router, start_server
from .state import Outbox, Workspace
from .throttles import Throttle
from .webhooks import DEFAULT_SECRET, Delivery, WebhookSender, WebhookTarget, signed_headers

SeedEvents = Callable[["RecallEmulator", dict[str, Any]], Any] | bool


@dataclass
class LoggedRequest:
    """One request the emulator received, and how it answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int = 0
    fault: str | None = None
    error: str | None = None
    #: When it arrived (``time.time()``), for a timeline of who called when.
    at: float = field(default_factory=time.time)


def _copy(value: Any) -> Any:
    """A deep copy of JSON-shaped state (several times faster than copy.deepcopy)."""
    return json.loads(json.dumps(value))


def _lenient_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return None


class RecallEmulator:
    """A Recall workspace served over HTTP on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        api_key: str = "test-api-key",
        webhook_secret: str = DEFAULT_SECRET,
        webhook_url: WebhookTarget = None,
        *,
        legacy_headers: bool = False,
        page_size: int = 100,
        auto_connect: bool = False,
        auto_connect_delay: float = 1.0,
        seed_events: SeedEvents | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        unruly: bool | UnrulyOptions = True,
        rate_limits: bool | dict[tuple[str, str], int] = True,
        time_scale: float = 1.0,
        strict: bool = False,
    ) -> None:
        self.api_key = api_key
        self.host, self.port = host, port
        self.auto_connect = auto_connect
        self.auto_connect_delay = auto_connect_delay
        self.seed_events = seed_events
        options = UnrulyOptions() if unruly is True else unruly or None
        self.unruly: UnrulyOptions | None = options
        self.clock = TimeScale(time_scale)
        self.workspace = Workspace(
            shuffle_seed=options.seed if options else None, unruly=options is not None
        )
        self.requests: list[LoggedRequest] = []
        self.faults = FaultInjector()
        self.webhooks = WebhookSender(webhook_secret, webhook_url, legacy_headers)
        self.outgoing = DeliveryQueue(self.webhooks, self.clock, options)
        self.idempotency = IdempotencyStore(self.clock)
        self.throttle: Throttle | None = (
            Throttle(self.clock, rate_limits if isinstance(rate_limits, dict) else None)
            if rate_limits
            else None
        )
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: EmulatorHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.router = Router()
        self.api = RecallApi(
            self.workspace, self._api_transaction, lambda: self.base_url, page_size, strict=strict
        )
        self.api.register(self.router)
        self.api.on_calendar_created = self._calendar_created
        self.oauth = OAuthProvider(lambda: self.base_url)
        self.oauth.register(self.router)

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self) -> RecallEmulator:
        if self._server is None:
            self._stopping.clear()
            self._server, thread = start_server(self.host, self.port, self._dispatch)
            sender = threading.Thread(
                target=self.outgoing.run,
                args=(self._stopping,),
                name="recall-webhooks",
                daemon=True,
            )
            sender.start()
            self._threads = [thread, sender]
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self.outgoing.stop()
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def __enter__(self) -> RecallEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("The emulator is not running; call start() or use it as a context.")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ----- webhooks plumbing ---------------------------------------------------------------
    @property
    def webhook_url(self) -> WebhookTarget:
        return self.webhooks.target

    @webhook_url.setter
    def webhook_url(self, target: WebhookTarget) -> None:
        self.webhooks.target = target

    @property
    def webhook_secret(self) -> str:
        return self.webhooks.secret

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.webhooks.deliveries)

    @contextmanager
    def _transaction(self, *, from_api: bool = False) -> Iterator[Outbox]:
        outbox: Outbox = []
        with self._lock:
            yield outbox
        for event, data in outbox:
            delivery = self.webhooks.build(event, data)
            if self.webhooks.target is None:
                self.webhooks.deliver(delivery)  # recorded only
            elif from_api or self.unruly is not None:
                self.outgoing.put(delivery)
            else:
                self.outgoing.send(delivery)

    def _api_transaction(self) -> Any:
        return self._transaction(from_api=True)

    def deliver_pending(self) -> list[Delivery]:
        """Deliver, in this thread, the webhooks waiting now (in no particular order when unruly;
        the retries this causes wait for their time: see ``settle``)."""
        return self.outgoing.drain()

    def settle(self, timeout: float = 30.0) -> list[Delivery]:
        """Deliver every waiting webhook, retries included (each at its scaled time), until none
        is left; raises TimeoutError after ``timeout`` real seconds."""
        return self.outgoing.settle(timeout)

    @property
    def schema_refusals(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(method, path, errors) of every request refused for breaking the Create Bot schema."""
        return list(self.api.schema_refusals)

    @property
    def failed_deliveries(self) -> list[Delivery]:
        """Every attempt the receiver refused or could not be reached for (also logged)."""
        return list(self.outgoing.failures)

    def send_webhook(
        self,
        event: str,
        data: dict[str, Any],
        *,
        message_id: str | None = None,
        timestamp: datetime | float | None = None,
        bad_signature: bool = False,
        tamper: bool = False,
        secret: str | None = None,
        legacy_headers: bool | None = None,
    ) -> Delivery:
        """Send any webhook now: badly signed, tampered with or stale when a test asks for it."""
        delivery = self.webhooks.build(
            event,
            data,
            message_id=message_id,
            timestamp=timestamp,
            secret=secret,
            legacy_headers=legacy_headers,
            bad_signature=bad_signature,
            tamper=tamper,
        )
        return self.webhooks.deliver(delivery)

    def redeliver(self, delivery: Delivery) -> Delivery:
        """The same message again (same id and body, fresh signature), as Svix retries."""
        return self.webhooks.deliver(self.webhooks.resign(delivery))

    def signed_headers(self, body: bytes | str, **options: Any) -> dict[str, str]:
        """Signature headers for any body with this emulator's secret (see ``signed_headers``)."""
        options.setdefault("legacy", self.webhooks.legacy_headers)
        return signed_headers(self.webhooks.secret, body, **options)

    def send_sync_events(self, calendar_id: str, last_updated_ts: str | None = None) -> Delivery:
        """A ``calendar.sync_events`` for the calendar (default: since its oldest event changed)."""
        with self._lock:
            self.workspace.calendar(calendar_id)
            if last_updated_ts is None:
                times = [
                    e["updated_at"]
                    for e in self.workspace.events.values()
                    if e["calendar_id"] == calendar_id
                ]
                last_updated_ts = (
                    min(times) if times else self.workspace.calendars[calendar_id]["created_at"]
                )
        stamp = parse_ts(last_updated_ts).isoformat()
        return self.send_webhook(
            "calendar.sync_events", {"calendar_id": calendar_id, "last_updated_ts": stamp}
        )

    def send_calendar_update(self, calendar_id: str) -> Delivery:
        return self.send_webhook("calendar.update", {"calendar_id": calendar_id})

    # ----- HTTP dispatch -------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "").strip()
        token = header.split(" ", 1)[1].strip() if header.lower().startswith("token ") else header
        return bool(token) and token == self.api_key

    def _dispatch(self, request: Request) -> Response:
        entry = LoggedRequest(
            request.method,
            request.path,
            request.flat_query,
            _lenient_json(request.body),
            dict(request.headers),
        )
        with self._lock:
            self.requests.append(entry)
        fault = self.faults.take(request.path)
        throttled = self.throttle.check(request.method, request.path) if self.throttle else None
        if fault is not None and fault.kind not in AFTER_HANDLING:
            response = fault_response(fault)
            entry.fault = fault.kind
        elif throttled is not None:
            response = throttled
            entry.fault = "throttled"
        else:
            entry.fault = fault.kind if fault is not None else None

            def handle(request: Request) -> Response:
                if fault is not None and fault.kind == "slow":
                    self._stopping.wait(fault.seconds)  # still "in flight" for idempotency
                return self._route(request, entry)

            response = self.idempotency.handle(request, handle)
            if fault is not None and fault.kind == "stall":
                self._stopping.wait(fault.seconds)
            elif fault is not None and fault.kind == "applied_500":
                response = fault_response(fault)
        entry.status = response.status
        return response

    def _route(self, request: Request, entry: LoggedRequest) -> Response:
        found = self.router.match(request.path)
        if found is None:
            return Response.json(404, {"detail": "Not found."})
        route, params = found
        request.params = params
        if route.authenticated and not self._authorized(request):
            detail = (
                "Invalid token."
                if request.headers.get("authorization")
                else "Authentication credentials were not provided."
            )
            return Response.json(401, {"detail": detail}, {"WWW-Authenticate": "Token"})
        handler = route.methods.get(request.method)
        if handler is None:
            allow = ", ".join([*route.methods, "OPTIONS"])
            return Response.json(
                405, {"detail": f'Method "{request.method}" not allowed.'}, {"Allow": allow}
            )
        try:
            return handler(request)
        except ApiError as exc:
            return Response.json(exc.status, exc.body, exc.headers)
        except Exception:
            entry.error = traceback.format_exc()
            return Response.json(500, {"detail": "A server error occurred."})

    def requests_for(
        self, method: str | None = None, path: str | None = None
    ) -> list[LoggedRequest]:
        """Logged requests by method and path substring (``"/bot/"`` matches both bot APIs)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or path in r.path)
            ]

    # ----- faults --------------------------------------------------------------------------
    def inject_fault(
        self,
        kind: str,
        count: int = 1,
        path: str | None = None,
        *,
        retry_after: float | None = 1,
        seconds: float = 3.0,
        after: int = 0,
    ) -> None:
        """Make the next ``count`` requests (under ``path`` if given), past the first ``after``
        of them, fail with ``kind``; a 429 or 507 says ``Retry-After: retry_after``
        (``retry_after=None``: no such header, as a 507 may come)."""
        self.faults.add(Fault(str(kind), count, path, retry_after, seconds, after))

    def fault_rate(
        self,
        rate: float,
        kinds: tuple[str, ...] | list[str] = ("429", "500", "502", "503", "504"),
        seed: int | None = None,
        *,
        retry_after: float = 0,
        seconds: float = 3.0,
    ) -> None:
        """Fail a random share of all requests (0 turns it off); ``seed`` makes it repeatable."""
        template = Fault("500", retry_after=retry_after, seconds=seconds)
        self.faults.set_rate(rate, tuple(str(k) for k in kinds), seed, template)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ----- state for tests -----------------------------------------------------------------
    def _snapshot(self, value: Any) -> Any:
        with self._lock:
            return _copy(value)

    @property
    def calendars(self) -> dict[str, dict[str, Any]]:
        return self._snapshot(self.workspace.calendars)

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        return self._snapshot(self.workspace.events)

    @property
    def bots(self) -> dict[str, dict[str, Any]]:
        """Every bot: ``bot_config``, ``deduplication_key``, ``event_ids``, ``bot_name``, ..."""
        return self._snapshot(self.workspace.bot_store.bots)

    # ----- control methods -----------------------------------------------------------------
    def create_calendar(
        self,
        platform: str = "google_calendar",
        *,
        oauth_client_id: str = "client-id",
        oauth_client_secret: str = "client-secret",
        oauth_refresh_token: str = "refresh-token",
        oauth_email: str | None = None,
    ) -> dict[str, Any]:
        """A calendar created as if through the API (``connecting``), without an HTTP call."""
        with self._transaction():
            calendar = self.workspace.create_calendar(
                {
                    "platform": platform,
                    "oauth_client_id": oauth_client_id,
                    "oauth_client_secret": oauth_client_secret,
                    "oauth_refresh_token": oauth_refresh_token,
                    "oauth_email": oauth_email,
                }
            )
            return _copy(calendar)

    def connect_calendar(self, calendar_id: str, email: str | None = None) -> dict[str, Any]:
        with self._transaction() as outbox:
            return _copy(self.workspace.connect_calendar(outbox, calendar_id, email))

    def disconnect_calendar(
        self,
        calendar_id: str,
        details: Mapping[str, Any] | str | None = None,
        *,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Access is lost: ``status`` becomes ``disconnected`` and ``status_changes`` grows by an
        entry with that status and its time (``created_at``), plus ``details``.

        Recall types no entry and documents only that a disconnection's details (such as a
        Microsoft Graph error code) are there, not under which keys; so the emulator adds none of
        its own and a test names them, e.g. ``details={"error_code": "invalid_grant"}``.
        ``reason`` (or a string for ``details``) is the former shorthand, kept for callers that use
        it: it warns and stands for ``{"error_code": reason}``.
        """
        if isinstance(details, str) or reason is not None:
            warnings.warn(
                "disconnect_calendar(reason=...) is deprecated: Recall publishes no 'reason' key; "
                "pass details={...} with the fields the entry should carry.",
                DeprecationWarning,
                stacklevel=2,
            )
            details = {"error_code": details if isinstance(details, str) else reason}
        with self._transaction() as outbox:
            return _copy(self.workspace.disconnect_calendar(outbox, calendar_id, details))

    def add_event(self, calendar_id: str, **fields: Any) -> dict[str, Any]:
        """An event with realistic defaults; sends ``calendar.sync_events``."""
        with self._transaction() as outbox:
            return _copy(self.workspace.add_event(outbox, calendar_id, fields))

    def add_event_with_bot(self, calendar_id: str, **fields: Any) -> dict[str, Any]:
        """An event (as ``add_event``) that already lists a Recall-managed bot, as one scheduled
        before the meeting began: the way to give a meeting that is over a bot. Move the bot
        (``event["bots"][0]["bot_id"]``) with ``move_bot``."""
        with self._transaction() as outbox:
            event = self.workspace.add_event(None, calendar_id, fields)
            self.workspace.attach_new_bot(event["id"])
            self.workspace.notify_sync(outbox, calendar_id, event["updated_at"])
            return _copy(self.workspace.events[event["id"]])

    def add_events(
        self, calendar_id: str, count: int, *, notify: bool = True, **common: Any
    ) -> list[dict[str, Any]]:
        """``count`` events (starts 30 minutes apart) and one webhook for all, or none."""
        return self.add_event_list(calendar_id, [common] * count, notify=notify, spread=True)

    def add_event_list(
        self,
        calendar_id: str,
        field_sets: list[dict[str, Any]],
        *,
        notify: bool = True,
        spread: bool = False,
    ) -> list[dict[str, Any]]:
        """One event per field set, then one ``calendar.sync_events`` (unless ``notify=False``)."""
        with self._transaction() as outbox:
            events = [
                self.workspace.add_event(None, calendar_id, fields, index if spread else 0)
                for index, fields in enumerate(field_sets)
            ]
            if notify and events:
                self.workspace.notify_sync(outbox, calendar_id, events[0]["updated_at"])
            return _copy(events)

    def update_event(self, event_id: str, **fields: Any) -> dict[str, Any]:
        with self._transaction() as outbox:
            return _copy(self.workspace.update_event(outbox, event_id, fields))

    def move_bot(
        self,
        bot_id: str,
        status: str,
        *,
        sub_code: str | None = None,
        waiting_room: bool = False,
    ) -> dict[str, Any]:
        """Move a bot through its meeting, sending each ``bot.*`` status webhook on the way.

        ``status`` is where the bot ends up; every status between its current one and it is
        passed through in Recall's order: ``joining_call``, ``in_waiting_room`` (only with
        ``waiting_room=True``), ``in_call_not_recording``, ``recording_permission_allowed`` or
        ``recording_permission_denied``, ``in_call_recording``, ``call_ended``, ``done``.
        ``"fatal"`` ends the bot from wherever it is. ``sub_code`` is set on the last step (the
        defaults are Recall's examples: ``meeting_ended_by_host`` for ``call_ended``,
        ``permission_denied_by_host``, ``invalid_meeting_url`` for ``fatal``); e.g. a bot kicked
        out: ``move_bot(id, "call_ended", sub_code="bot_kicked_from_call")``. Each webhook has
        ``data.bot`` (id, metadata) and ``data.data`` (code, sub_code, updated_at). A bot that
        has started is no longer a deduplication target: scheduling its key again gives a new
        bot. Returns the bot record.
        """
        with self._transaction() as outbox:
            return _copy(self.workspace.move_bot(outbox, bot_id, status, sub_code, waiting_room))

    def delete_event(self, event_id: str) -> dict[str, Any]:
        """Recall never hard-deletes: ``is_deleted`` flips and the event's bot is unscheduled."""
        return self.update_event(event_id, is_deleted=True)

    def move_event(self, event_id: str, new_calendar_id: str) -> dict[str, Any]:
        """The event now belongs to another calendar (Google ownership transfer)."""
        return self.update_event(event_id, calendar_id=new_calendar_id)

    # ----- demo ----------------------------------------------------------------------------
    def _calendar_created(self, calendar: dict[str, Any]) -> None:
        if self.auto_connect:
            timer = threading.Timer(
                self.auto_connect_delay, self._connect_and_seed, [calendar["id"]]
            )
            timer.daemon = True
            timer.start()

    def _connect_and_seed(self, calendar_id: str) -> None:
        """The demo's stand-in for Recall's first sync: connect, add a week of meetings, notify."""
        with self._lock:
            calendar = self.workspace.calendars.get(calendar_id)
            token = calendar["oauth_refresh_token"] if calendar else None
        if self._stopping.is_set() or token is None:
            return
        calendar = self.connect_calendar(calendar_id, self.oauth.email_for_refresh_token(token))
        if self.seed_events is True:
            self.add_event_list(calendar["id"], working_week_of(calendar))
            for spec in finished_meetings_of(calendar):
                moves = spec.pop("bot_moves")
                event = self.add_event_with_bot(calendar["id"], **spec)
                for status, sub_code in moves:
                    self.move_bot(event["bots"][0]["bot_id"], status, sub_code=sub_code)
        elif self.seed_events:
            self.seed_events(self, calendar)

    # ----- OAuth provider ------------------------------------------------------------------
    @property
    def oauth_next_email(self) -> str | None:
        """The account email the consent page offers (and ``oauth_consent`` uses) next."""
        return self.oauth.next_email

    @oauth_next_email.setter
    def oauth_next_email(self, email: str | None) -> None:
        self.oauth.next_email = email

    def oauth_consent(
        self, authorize_url: str, *, email: str | None = None, allow: bool = True
    ) -> str:
        """Answer a consent page over HTTP as a user would; returns the redirect back to the app."""

        parts = urlsplit(authorize_url)
        form = dict(parse_qsl(parts.query, keep_blank_values=True))
        form["email"] = email or self.oauth.next_email or ""
        form["decision"] = "allow" if allow else "deny"
        answer = requests.post(
            f"{self.base_url}{parts.path}", data=form, allow_redirects=False, timeout=10
        )
        if answer.status_code != 302:
            raise RuntimeError(f"Consent page answered {answer.status_code}: {answer.text[:200]}")
        return answer.headers["Location"]
