"""Recall's REST API (Calendar V2 and Bot v1): request checks, filters and pagination.

Each handler validates first, then changes the workspace inside one transaction (the emulator's
lock); webhooks a change causes are delivered after the lock is released.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from .bots import bot_status, is_started, render_bot
from .clock import format_ts, parse_ts
from .errors import ApiError, not_found
from .meeting_urls import structured_meeting_url
from .pagination import decode_cursor, next_url, page_body, take_page
from .server import Request, Response, Router
from .state import CALENDAR_PLATFORMS, CALENDAR_STATUSES, Outbox, Workspace, event_key
from .validation import (
    Errors,
    body_object,
    boolean,
    bot_config_errors,
    check_uuid_path,
    choice,
    string,
    timestamp,
    uuid_text,
)

Transaction = Callable[[], AbstractContextManager[Outbox]]


def _encode(row: dict[str, Any]) -> bytes:
    return json.dumps(row).encode()


def _created_key(row: dict[str, Any]) -> tuple[str, str]:
    return row["created_at"], row["id"]


def _id_key(row: dict[str, Any]) -> tuple[str, str]:
    return row["id"], ""


class RecallApi:
    """Route handlers over one workspace."""

    def __init__(
        self,
        workspace: Workspace,
        transaction: Transaction,
        base_url: Callable[[], str],
        page_size: int,
        *,
        strict: bool = False,
    ) -> None:
        self.strict = strict
        self.schema_refusals: list[tuple[str, str, dict[str, Any]]] = []
        self.workspace = workspace
        self.transaction = transaction
        self.base_url = base_url
        self.page_size = page_size
        self.on_calendar_created: Callable[[dict[str, Any]], None] | None = None

    def _schema_errors(self, request: Request, config: dict[str, Any]) -> Errors:
        """What the Create Bot schema refuses in ``config``, remembered for the test to check."""
        errors = bot_config_errors(config, strict=self.strict)
        if errors:
            self.schema_refusals.append((request.method, request.path, dict(errors)))
        return errors

    def register(self, router: Router) -> None:
        router.add("/api/v2/calendars/", {"GET": self.list_calendars, "POST": self.create_calendar})
        router.add(
            "/api/v2/calendars/{id}/",
            {
                "GET": self.retrieve_calendar,
                "PATCH": self.update_calendar,
                "DELETE": self.delete_calendar,
            },
        )
        router.add("/api/v2/calendars/{id}/access-token/", {"POST": self.access_token})
        router.add("/api/v2/calendar-events/", {"GET": self.list_events})
        router.add("/api/v2/calendar-events/{id}/", {"GET": self.retrieve_event})
        router.add(
            "/api/v2/calendar-events/{id}/bot/",
            {"POST": self.schedule_bot, "DELETE": self.unschedule_bot},
        )
        router.add("/api/v1/bot/", {"GET": self.list_bots, "POST": self.create_bot})
        router.add(
            "/api/v1/bot/{id}/",
            {"GET": self.retrieve_bot, "PATCH": self.update_bot, "DELETE": self.delete_bot},
        )

    def _page(
        self,
        request: Request,
        rows: list[dict],
        key: Callable[[dict], tuple[str, str]],
        matches: Callable[[dict], bool],
        encode: Callable[[dict], bytes],
        start: tuple[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        cursor = request.arg("cursor")
        after = decode_cursor(cursor) if cursor else None
        page, last = take_page(rows, key, matches, self.page_size, after=after, start=start)
        if self.workspace.unruly:  # Recall promises no order of results
            self.workspace.random.shuffle(page)
        link = next_url(self.base_url(), request.path, request.flat_query, last)
        return Response(200, page_body([encode(row) for row in page], link, **extra))

    # ----- calendars -----------------------------------------------------------------------
    def _calendar_fields(self, request: Request, *, partial: bool) -> dict[str, Any]:
        body = body_object(request.json())
        errors = Errors()
        fields: dict[str, Any] = {}
        for name in ("oauth_client_id", "oauth_client_secret", "oauth_refresh_token"):
            value = string(body, name, errors, required=not partial)
            if value is not None:
                fields[name] = value
        for name in ("oauth_email", "webhook_url"):
            value = string(body, name, errors)
            if value is not None:
                fields[name] = value
        if "oauth_email" in fields and "@" not in fields["oauth_email"]:
            errors.add("oauth_email", "Enter a valid email address.")
        if "platform" in body or not partial:
            if body.get("platform") is None:
                errors.add("platform", "This field is required.")
            fields["platform"] = choice(
                body.get("platform"), "platform", CALENDAR_PLATFORMS, errors
            )
        errors.raise_if_any()
        return fields

    def create_calendar(self, request: Request) -> Response:
        fields = self._calendar_fields(request, partial=False)
        with self.transaction():
            calendar = self.workspace.create_calendar(fields)
            response = Response.json(201, calendar)
        if self.on_calendar_created is not None:
            self.on_calendar_created(calendar)
        return response

    def list_calendars(self, request: Request) -> Response:
        errors = Errors()
        created = timestamp(request.arg("created_at__gte"), "created_at__gte", errors)
        email = (request.arg("email") or "").lower()
        platform = choice(request.arg("platform"), "platform", CALENDAR_PLATFORMS, errors)
        status = choice(request.arg("status"), "status", CALENDAR_STATUSES, errors)
        errors.raise_if_any()
        since = format_ts(created) if created else None

        def matches(calendar: dict) -> bool:
            emails = {
                (calendar["platform_email"] or "").lower(),
                (calendar.get("oauth_email") or "").lower(),
            }
            return (
                (since is None or calendar["created_at"] >= since)
                and (not email or email in emails)
                and (platform is None or calendar["platform"] == platform)
                and (status is None or calendar["status"] == status)
            )

        with self.transaction():
            rows = sorted(self.workspace.calendars.values(), key=_created_key)
            return self._page(request, rows, _created_key, matches, _encode)

    def retrieve_calendar(self, request: Request) -> Response:
        calendar_id = check_uuid_path(request.params["id"])
        with self.transaction():
            return Response.json(200, self.workspace.calendar(calendar_id))

    def update_calendar(self, request: Request) -> Response:
        calendar_id = check_uuid_path(request.params["id"])
        fields = self._calendar_fields(request, partial=True)
        with self.transaction() as outbox:
            return Response.json(200, self.workspace.update_calendar(outbox, calendar_id, fields))

    def delete_calendar(self, request: Request) -> Response:
        calendar_id = check_uuid_path(request.params["id"])
        with self.transaction():
            self.workspace.delete_calendar(calendar_id)
        return Response(204)

    def access_token(self, request: Request) -> Response:
        calendar_id = check_uuid_path(request.params["id"])
        with self.transaction():
            return Response.json(200, self.workspace.access_token(calendar_id))

    # ----- calendar events -----------------------------------------------------------------
    def list_events(self, request: Request) -> Response:
        errors = Errors()
        calendar_id = request.arg("calendar_id")
        if calendar_id is not None:
            calendar_id = uuid_text(calendar_id, "calendar_id", errors)
        ical_uid = request.arg("ical_uid")
        deleted_arg = request.arg("is_deleted")
        deleted = boolean(deleted_arg, "is_deleted", errors) if deleted_arg is not None else None
        times = {
            name: timestamp(request.arg(name), name, errors)
            for name in ("start_time", "start_time__gte", "start_time__lte", "updated_at__gte")
        }
        errors.raise_if_any()
        start_filters = [
            (name, value) for name, value in times.items() if value and name != "updated_at__gte"
        ]
        updated = times["updated_at__gte"]

        def matches(event: dict) -> bool:
            if calendar_id is not None and event["calendar_id"] != calendar_id:
                return False
            if ical_uid is not None and not event["ical_uid"].startswith(ical_uid):
                return False
            if deleted is not None and event["is_deleted"] != deleted:
                return False
            return not start_filters or _start_matches(event, start_filters)

        with self.transaction():
            encode = self.workspace.event_json
            if self.workspace.unruly:  # Recall promises no order, across pages either: by id
                since = format_ts(updated) if updated else ""

                def recent(event: dict) -> bool:
                    return event["updated_at"] >= since and matches(event)

                rows = sorted(self.workspace.events.values(), key=_id_key)
                return self._page(request, rows, _id_key, recent, encode)
            start = (format_ts(updated), "") if updated else None
            rows = self.workspace.event_order
            return self._page(request, rows, event_key, matches, encode, start=start)

    def retrieve_event(self, request: Request) -> Response:
        event_id = check_uuid_path(request.params["id"])
        with self.transaction():
            return Response.json(200, self.workspace.event(event_id))

    def schedule_bot(self, request: Request) -> Response:
        event_id = check_uuid_path(request.params["id"])
        body = body_object(request.json())
        errors = Errors()
        key = string(body, "deduplication_key", errors, required=True)
        config = body.get("bot_config")
        if "bot_config" not in body or config is None:
            errors.add("bot_config", "This field is required.")
        elif not isinstance(config, dict):
            errors.add("bot_config", "Expected a dictionary of items.")
        else:
            nested = self._schema_errors(request, config)
            if nested:
                errors["bot_config"] = nested
        with self.transaction():
            self.workspace.event(event_id)
            errors.raise_if_any()
            return Response.json(200, self.workspace.schedule_bot(event_id, key, config))

    def unschedule_bot(self, request: Request) -> Response:
        event_id = check_uuid_path(request.params["id"])
        with self.transaction():
            return Response.json(200, self.workspace.unschedule_bot(event_id))

    # ----- bots (v1) -----------------------------------------------------------------------
    def _bot_fields(self, request: Request, *, partial: bool) -> dict[str, Any]:
        body = body_object(request.json())
        errors = Errors()
        url = string(body, "meeting_url", errors, required=not partial)
        if url and structured_meeting_url(url) is None:
            errors.add("meeting_url", "Invalid meeting URL or unsupported meeting platform.")
        others = {name: value for name, value in body.items() if name != "meeting_url"}
        errors.update(self._schema_errors(request, others))
        errors.raise_if_any()
        fields = dict(body)
        fields["join_at"] = parse_ts(body["join_at"]) if body.get("join_at") else None
        return fields

    def _bot(self, request: Request) -> dict[str, Any]:
        bot = self.workspace.bot_store.bots.get(check_uuid_path(request.params["id"]))
        if bot is None:
            raise not_found()
        return bot

    def create_bot(self, request: Request) -> Response:
        fields = self._bot_fields(request, partial=False)
        config = {k: v for k, v in fields.items() if k not in ("meeting_url", "join_at")}
        with self.transaction():
            now = self.workspace.clock.now()
            bot = self.workspace.bot_store.create(
                now, meeting_url=fields["meeting_url"], join_at=fields["join_at"], config=config
            )
            return Response.json(201, render_bot(bot, now))

    def list_bots(self, request: Request) -> Response:
        errors = Errors()
        after = timestamp(request.arg("join_at_after"), "join_at_after", errors)
        before = timestamp(request.arg("join_at_before"), "join_at_before", errors)
        errors.raise_if_any()
        url = request.arg("meeting_url")
        platforms = set(request.query.get("platform", []))
        statuses = set(request.query.get("status", []))
        metadata = {
            name.removeprefix("metadata__"): values[-1]
            for name, values in request.query.items()
            if name.startswith("metadata__")
        }
        with self.transaction():
            now = self.workspace.clock.now()

            def matches(bot: dict) -> bool:
                join_at = _parse_or_none(bot["join_at"])
                structured = structured_meeting_url(bot["meeting_url"]) or {}
                return (
                    (after is None or (join_at is not None and join_at >= after))
                    and (before is None or (join_at is not None and join_at <= before))
                    and (url is None or bot["meeting_url"] == url)
                    and (not platforms or structured.get("platform") in platforms)
                    and (not statuses or bot_status(bot, now) in statuses)
                    and all(bot["metadata"].get(k) == v for k, v in metadata.items())
                )

            rows = sorted(self.workspace.bot_store.bots.values(), key=_created_key)
            count = sum(1 for bot in rows if matches(bot))
            return self._page(
                request,
                rows,
                _created_key,
                matches,
                lambda b: _encode(render_bot(b, now)),
                count=count,
            )

    def retrieve_bot(self, request: Request) -> Response:
        with self.transaction():
            return Response.json(200, render_bot(self._bot(request), self.workspace.clock.now()))

    def update_bot(self, request: Request) -> Response:
        fields = self._bot_fields(request, partial=True)
        with self.transaction():
            bot = self._bot(request)
            now = self.workspace.clock.now()
            if is_started(bot, now):
                raise ApiError(
                    400,
                    {
                        "code": "update_bot_failed",
                        "message": "The bot has already been dispatched.",
                    },
                )
            config = {
                name: value
                for name, value in {**bot["bot_config"], **fields}.items()
                if name not in ("join_at", "meeting_url")
            }
            join_at = fields["join_at"] or _parse_or_none(bot["join_at"])
            self.workspace.bot_store.configure(
                bot,
                meeting_url=fields.get("meeting_url") or bot["meeting_url"],
                join_at=join_at,
                config=config,
            )
            return Response.json(200, render_bot(bot, now))

    def delete_bot(self, request: Request) -> Response:
        with self.transaction():
            bot = self._bot(request)
            if is_started(bot, self.workspace.clock.now()):
                raise ApiError(
                    405, {"detail": "Cannot delete a bot that has already been dispatched."}
                )
            self.workspace.forget_bot(bot["id"])
        return Response(204)


def _parse_or_none(value: str | None) -> datetime | None:
    return parse_ts(value) if value else None


def _start_matches(event: dict, filters: list[tuple[str, datetime]]) -> bool:
    start = parse_ts(event["start_time"])
    for name, value in filters:
        if name == "start_time" and start != value:
            return False
        if name == "start_time__gte" and start < value:
            return False
        if name == "start_time__lte" and start > value:
            return False
    return True
