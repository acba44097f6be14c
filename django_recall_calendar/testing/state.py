"""The emulated workspace: calendars, their events, and managed bot scheduling, as Recall behaves.

Not thread-safe by itself: the emulator runs every call under one lock
(``RecallEmulator._transaction``).
Methods that cause webhooks append ``(event_type, data)`` to an ``outbox`` the caller delivers after
releasing the lock, because a receiver calls the API back while it handles a delivery.
"""

from __future__ import annotations

import copy
import json
import random
import string
import uuid
from bisect import bisect_left, insort
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .bots import DEFAULT_SUB_CODES, BotStore, is_started, status_change, steps_to
from .clock import MonotonicClock, format_time, format_ts, parse_ts
from .errors import ApiError, invalid, not_found
from .meeting_urls import meeting_platform
from .raw_payloads import RawInputs, build_raw

Outbox = list[tuple[str, dict[str, Any]]]

CALENDAR_PLATFORMS = ("google_calendar", "microsoft_outlook")
CALENDAR_STATUSES = ("connecting", "connected", "disconnected")

# Event fields a test may set, and the extra inputs that only shape ``raw``.
EVENT_FIELDS = {
    "id",
    "start_time",
    "end_time",
    "meeting_url",
    "meeting_platform",
    "platform_id",
    "ical_uid",
    "is_deleted",
    "raw",
    "bots",
}
RAW_FIELDS = {"title", "organizer", "attendees", "series_id", "description", "raw_extra"}


def event_key(event: dict[str, Any]) -> tuple[str, str]:
    """Listing order: (updated_at, id), so an incremental consumer resumes where it stopped."""
    return event["updated_at"], event["id"]


def _random_text(length: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(random.choices(alphabet, k=length))


def default_meeting_url() -> str:
    return f"https://zoom.us/j/{random.randint(10**9, 10**10 - 1)}"


class Workspace:
    """Everything one Recall workspace holds."""

    def __init__(self, *, unruly: bool = False, shuffle_seed: int | None = None) -> None:
        self.unruly = unruly
        self.random = random.Random(shuffle_seed)
        self.clock = MonotonicClock()
        self.calendars: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.event_order: list[dict[str, Any]] = []
        self.raw_inputs: dict[str, RawInputs] = {}
        self.custom_raw: set[str] = set()
        self.bot_store = BotStore()
        self._json: dict[str, tuple[dict[str, Any], bytes]] = {}

    # ----- lookups -------------------------------------------------------------------------
    def calendar(self, calendar_id: str) -> dict[str, Any]:
        try:
            return self.calendars[calendar_id]
        except KeyError:
            raise not_found() from None

    def event(self, event_id: str) -> dict[str, Any]:
        try:
            return self.events[event_id]
        except KeyError:
            raise not_found() from None

    def event_json(self, event: dict[str, Any]) -> bytes:
        """An event's JSON, cached: stored events are replaced on change, never edited in place."""
        cached = self._json.get(event["id"])
        if cached is not None and cached[0] is event:
            return cached[1]
        encoded = json.dumps(event).encode()
        self._json[event["id"]] = (event, encoded)
        return encoded

    # ----- calendars -----------------------------------------------------------------------
    def create_calendar(self, fields: dict[str, Any]) -> dict[str, Any]:
        now = format_ts(self.clock.now())
        calendar = {
            "id": str(uuid.uuid4()),
            "oauth_client_id": fields["oauth_client_id"],
            "oauth_client_secret": fields["oauth_client_secret"],
            "oauth_refresh_token": fields["oauth_refresh_token"],
            "platform": fields["platform"],
            "platform_email": None,
            "status": "connecting",
            "status_changes": [],
            "created_at": now,
            "updated_at": now,
        }
        # Optional strings the spec never shows as null: present only when set.
        for name in ("webhook_url", "oauth_email"):
            if fields.get(name) is not None:
                calendar[name] = fields[name]
        self.calendars[calendar["id"]] = calendar
        return calendar

    def _set_status(
        self,
        outbox: Outbox,
        calendar: dict[str, Any],
        status: str,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Recall types no ``status_changes`` entry: this one holds the status and its time, plus
        exactly the ``details`` a test gives (no key of the emulator's own)."""
        now = format_ts(self.clock.now())
        change: dict[str, Any] = {**(details or {}), "status": status, "created_at": now}
        calendar["status"] = status
        calendar["status_changes"] = [*calendar["status_changes"], change]
        calendar["updated_at"] = now
        outbox.append(("calendar.update", {"calendar_id": calendar["id"]}))
        return calendar

    def connect_calendar(
        self, outbox: Outbox, calendar_id: str, email: str | None = None
    ) -> dict[str, Any]:
        """The first sync finished: ``connected`` with the account's email."""
        calendar = self.calendar(calendar_id)
        calendar["platform_email"] = (
            email
            or calendar["platform_email"]
            or calendar.get("oauth_email")
            or f"user-{calendar_id[:8]}@example.com"
        )
        return self._set_status(outbox, calendar, "connected")

    def disconnect_calendar(
        self, outbox: Outbox, calendar_id: str, details: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Access was lost: ``disconnected``; the calendar's future bots are unscheduled (its
        events stay readable, their ``updated_at`` unmoved)."""
        calendar = self.calendar(calendar_id)
        now = self.clock.now()
        for event in self._events_of(calendar_id):
            if parse_ts(event["start_time"]) > now:
                self._drop_bots(event)
        return self._set_status(outbox, calendar, "disconnected", details)

    def update_calendar(
        self, outbox: Outbox, calendar_id: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """PATCH writable fields; an empty PATCH or new credentials reconnect a disconnected one."""
        calendar = self.calendar(calendar_id)
        calendar.update(fields)
        calendar["updated_at"] = format_ts(self.clock.now())
        credentials = {"oauth_refresh_token", "oauth_client_secret"} & fields.keys()
        if calendar["status"] == "disconnected" and (not fields or credentials):
            calendar["platform_email"] = calendar["platform_email"] or calendar.get("oauth_email")
            self._set_status(outbox, calendar, "connected")
        return calendar

    def delete_calendar(self, calendar_id: str) -> None:
        """Gone with its events; their bots are unscheduled; Recall sends no webhook for this."""
        self.calendar(calendar_id)
        for event in self._events_of(calendar_id):
            self._drop_bots(event)
            del self.events[event["id"]]
            self.raw_inputs.pop(event["id"], None)
            self._json.pop(event["id"], None)
            self.custom_raw.discard(event["id"])
        self.event_order = [e for e in self.event_order if e["calendar_id"] != calendar_id]
        del self.calendars[calendar_id]

    def access_token(self, calendar_id: str) -> dict[str, Any]:
        calendar = self.calendar(calendar_id)
        if calendar["status"] == "disconnected":
            raise ApiError(
                400,
                {
                    "code": "bad_refresh_token",
                    "message": "The calendar's refresh token is invalid.",
                },
            )
        expires = self.clock.now() + timedelta(hours=1)
        return {"token": "ya29." + _random_text(64), "expires_at": format_ts(expires)}

    # ----- events --------------------------------------------------------------------------
    def _events_of(self, calendar_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events.values() if e["calendar_id"] == calendar_id]

    def _store(self, event: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
        """Put an event in the map and its place in the (updated_at, id) order."""
        if previous is not None:
            index = bisect_left(self.event_order, event_key(previous), key=event_key)
            assert self.event_order[index] is previous, "the order and the map always agree"
            del self.event_order[index]
        self.events[event["id"]] = event
        if not self.event_order or event_key(self.event_order[-1]) < event_key(event):
            self.event_order.append(event)
        else:
            insort(self.event_order, event, key=event_key)
        return event

    def _render_raw(self, event: dict[str, Any]) -> None:
        if event["id"] in self.custom_raw:
            return
        inputs = self.raw_inputs[event["id"]]
        start, end = parse_ts(event["start_time"]), parse_ts(event["end_time"])
        event["raw"] = build_raw(event, inputs, start, end)

    def _raw_inputs(self, calendar: dict[str, Any], extra: dict[str, Any]) -> RawInputs:
        owner = calendar["platform_email"] or calendar.get("oauth_email") or "owner@example.com"
        inputs = RawInputs(organizer=owner, self_email=owner, attendees=[owner])
        for name in RAW_FIELDS & extra.keys():
            setattr(inputs, name, extra[name])
        return inputs

    def add_event(
        self, outbox: Outbox | None, calendar_id: str, fields: dict[str, Any], index: int = 0
    ) -> dict[str, Any]:
        """A new event with realistic defaults for everything not given."""
        calendar = self.calendar(calendar_id)
        unknown = set(fields) - EVENT_FIELDS - RAW_FIELDS - {"duration"}
        if unknown:
            raise TypeError(f"Unknown event fields: {', '.join(sorted(unknown))}")
        now = self.clock.now()
        start = (
            parse_ts(fields["start_time"])
            if "start_time" in fields
            else (now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
            + timedelta(minutes=30 * index)
        )
        duration = fields.get("duration", timedelta(minutes=30))
        if not isinstance(duration, timedelta):
            duration = timedelta(minutes=duration)
        end = parse_ts(fields["end_time"]) if "end_time" in fields else start + duration
        url = fields["meeting_url"] if "meeting_url" in fields else default_meeting_url()
        google = calendar["platform"] == "google_calendar"
        event_id = fields.get("id") or str(uuid.uuid4())
        platform_id = fields.get("platform_id") or (
            _random_text(26) if google else "AAMkAG" + _random_text(40, string.ascii_letters)
        )
        event = {
            "id": event_id,
            "start_time": format_time(start),
            "end_time": format_time(end),
            "calendar_id": calendar_id,
            "raw": None,
            "platform": calendar["platform"],
            "platform_id": platform_id,
            "ical_uid": fields.get("ical_uid")
            or (
                f"{platform_id}@google.com"
                if google
                else "040000008200E00074C5B7101A82E008" + _random_text(32, "0123456789ABCDEF")
            ),
            "meeting_platform": fields.get("meeting_platform", meeting_platform(url)),
            "meeting_url": url,
            "created_at": format_ts(now),
            "updated_at": format_ts(now),
            "is_deleted": bool(fields.get("is_deleted", False)),
            "bots": list(fields.get("bots", [])),
        }
        self.raw_inputs[event_id] = self._raw_inputs(calendar, fields)
        if fields.get("raw") is not None:
            self.custom_raw.add(event_id)
            event["raw"] = fields["raw"]
        self._render_raw(event)
        self._store(event, None)
        if outbox is not None:
            self.notify_sync(outbox, calendar_id, event["updated_at"])
        return event

    def notify_sync(self, outbox: Outbox, calendar_id: str, updated_at: str) -> None:
        """Announce changes since ``updated_at``; unruly, an earlier moment, as Recall only
        promises a valid ``updated_at__gte`` for them, not one equal to any event's."""
        moment = parse_ts(updated_at)
        if self.unruly:
            moment -= timedelta(microseconds=self.random.randrange(1, 1_500_000))
        last = moment.isoformat()
        outbox.append(
            ("calendar.sync_events", {"calendar_id": calendar_id, "last_updated_ts": last})
        )

    def update_event(self, outbox: Outbox, event_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Change an event as the provider would: ``updated_at`` moves, bots stay where they are."""
        previous = self.event(event_id)
        unknown = set(fields) - EVENT_FIELDS - RAW_FIELDS - {"calendar_id"}
        if unknown:
            raise TypeError(f"Unknown event fields: {', '.join(sorted(unknown))}")
        event = copy.copy(previous)
        for name in ("start_time", "end_time"):
            if name in fields:
                event[name] = format_time(parse_ts(fields[name]))
        for name in EVENT_FIELDS - {"start_time", "end_time", "id"}:
            if name in fields:
                event[name] = fields[name]
        if "calendar_id" in fields:
            self.calendar(fields["calendar_id"])
            event["calendar_id"] = fields["calendar_id"]
        if "meeting_url" in fields and "meeting_platform" not in fields:
            event["meeting_platform"] = meeting_platform(fields["meeting_url"])
        inputs = self.raw_inputs[event_id]
        for name in RAW_FIELDS & fields.keys():
            setattr(inputs, name, fields[name])
        if fields.get("raw") is not None:
            self.custom_raw.add(event_id)
        event["updated_at"] = format_ts(self.clock.now())
        if fields.get("is_deleted"):
            self._detach(event)
            event["bots"] = []
        self._render_raw(event)
        self._store(event, previous)
        for calendar_id in dict.fromkeys((previous["calendar_id"], event["calendar_id"])):
            self.notify_sync(outbox, calendar_id, event["updated_at"])
        return event

    # ----- managed scheduling --------------------------------------------------------------
    def _detach(self, event: dict[str, Any]) -> None:
        """Take the event off its bots, deleting bots no other event uses."""
        for entry in event["bots"]:
            self.bot_store.detach(entry["bot_id"], event["id"])

    def _drop_bots(self, event: dict[str, Any]) -> None:
        """Unschedule a stored event's bots; like Recall, without moving its updated_at."""
        self._detach(event)
        if event["bots"]:
            self._replace_bots(event, [])

    def _replace_bots(self, event: dict[str, Any], bots: list[dict[str, Any]]) -> dict:
        updated = {**event, "bots": bots}
        self.events[event["id"]] = updated
        index = bisect_left(self.event_order, event_key(event), key=event_key)
        if index < len(self.event_order) and self.event_order[index]["id"] == event["id"]:
            self.event_order[index] = updated
        return updated

    def schedule_bot(
        self, event_id: str, deduplication_key: str, bot_config: dict[str, Any]
    ) -> dict[str, Any]:
        """POST .../bot/: one bot per key in the workspace; a new POST replaces config and key."""
        event = self.event(event_id)
        now = self.clock.now()
        if event["is_deleted"]:
            raise invalid(
                {"non_field_errors": ["Cannot schedule bot as calendar event is deleted."]}
            )
        if parse_ts(event["end_time"]) <= now:
            raise invalid(
                {"non_field_errors": ["Cannot schedule bot as calendar event has ended."]}
            )
        meeting_url = bot_config.get("meeting_url") or event["meeting_url"]
        if not meeting_url:
            raise invalid(
                {"non_field_errors": ["Cannot schedule bot as calendar event has no meeting url."]}
            )
        start = parse_ts(event["start_time"])
        store = self.bot_store
        started = [entry for entry in event["bots"] if self._started(entry["bot_id"], now)]
        for entry in event["bots"]:
            if entry["deduplication_key"] != deduplication_key and entry not in started:
                store.detach(entry["bot_id"], event_id)
        bot_id = store.by_key.get(deduplication_key)
        # Deduplication only joins bots still waiting to start; a started one gets a successor.
        if bot_id is None or is_started(store.bots[bot_id], now):
            bot = store.create(
                now,
                meeting_url=meeting_url,
                join_at=start,
                config=bot_config,
                deduplication_key=deduplication_key,
            )
        else:
            bot = store.bots[bot_id]
            store.configure(bot, meeting_url=meeting_url, join_at=start, config=bot_config)
        store.attach(bot, event_id)
        entry = {
            "bot_id": bot["id"],
            "start_time": event["start_time"],
            "deduplication_key": deduplication_key,
            "meeting_url": meeting_url,
        }
        kept = [old for old in started if old["bot_id"] != bot["id"]]
        return self._replace_bots(event, [*kept, entry])

    def _started(self, bot_id: str, now: datetime) -> bool:
        bot = self.bot_store.bots.get(bot_id)
        return bot is not None and is_started(bot, now)

    def move_bot(
        self, outbox: Outbox, bot_id: str, target: str, sub_code: str | None, waiting_room: bool
    ) -> dict[str, Any]:
        """Walk a bot to ``target`` through Recall's statuses, one ``bot.*`` webhook per step."""
        bot = self.bot_store.bots.get(bot_id)
        if bot is None:
            raise not_found()
        steps = steps_to(bot, target, waiting_room=waiting_room)
        for step in steps:
            code = sub_code if step == steps[-1] and sub_code else DEFAULT_SUB_CODES.get(step)
            at = format_ts(self.clock.now())
            bot["status_changes"] = [*bot["status_changes"], status_change(step, code, at)]
            outbox.append(
                (
                    f"bot.{step}",
                    {
                        "bot": {"id": bot_id, "metadata": dict(bot["metadata"])},
                        "data": {
                            "code": step,
                            "sub_code": code,
                            "updated_at": parse_ts(at).isoformat(),
                        },
                    },
                )
            )
        return bot

    def attach_new_bot(self, event_id: str) -> dict[str, Any]:
        """A managed bot for a stored event whatever its time (as if scheduled before the meeting
        began), listed on the event without moving its updated_at."""
        event = self.event(event_id)
        bot = self.bot_store.create(
            self.clock.now(),
            meeting_url=event["meeting_url"],
            join_at=parse_ts(event["start_time"]),
            config={},
            deduplication_key=f"attached-{event_id}",
        )
        self.bot_store.attach(bot, event_id)
        entry = {
            "bot_id": bot["id"],
            "start_time": event["start_time"],
            "deduplication_key": bot["deduplication_key"],
            "meeting_url": event["meeting_url"],
        }
        self._replace_bots(event, [*event["bots"], entry])
        return bot

    def unschedule_bot(self, event_id: str) -> dict[str, Any]:
        """DELETE .../bot/: idempotent; the bot itself goes only when no other event shares it."""
        event = self.event(event_id)
        self._drop_bots(event)
        return self.events[event_id]

    def forget_bot(self, bot_id: str) -> None:
        """A bot deleted through the Bot API disappears from every event that showed it."""
        bot = self.bot_store.bots.get(bot_id)
        if bot is None:
            return
        for event_id in bot["event_ids"]:
            event = self.events.get(event_id)
            if event is not None:
                kept = [entry for entry in event["bots"] if entry["bot_id"] != bot_id]
                self._replace_bots(event, kept)
        self.bot_store.delete(bot_id)
