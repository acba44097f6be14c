"""Bots: the v1 Bot API's objects and the bots Recall-managed scheduling creates.

Kept as internal records (config, deduplication key, events sharing the bot) and rendered into the
Bot API's shape on the way out, so tests can inspect what the app asked for.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .clock import format_time, format_ts, parse_ts
from .meeting_urls import structured_meeting_url
from .validation import BOT_OBJECT_FIELDS

DEFAULT_BOT_NAME = "Meeting Notetaker"

# Bot fields the API shows; null when the request did not set them.
CONFIG_FIELDS = BOT_OBJECT_FIELDS


# A bot's way through a meeting, in the order Recall reports it (webhooks.json's bot.* events).
JOINING = "joining_call"
WAITING_ROOM = "in_waiting_room"
IN_CALL = "in_call_not_recording"
PERMISSION_ALLOWED = "recording_permission_allowed"
PERMISSION_DENIED = "recording_permission_denied"
RECORDING = "in_call_recording"
CALL_ENDED = "call_ended"
DONE = "done"
FATAL = "fatal"

RECORDED_PATH = (JOINING, WAITING_ROOM, IN_CALL, PERMISSION_ALLOWED, RECORDING, CALL_ENDED, DONE)
DENIED_PATH = (JOINING, WAITING_ROOM, IN_CALL, PERMISSION_DENIED, CALL_ENDED, DONE)
ENDINGS = frozenset({DONE, FATAL})

# The sub-code a step carries when the caller names none (webhooks.json's examples); null otherwise.
DEFAULT_SUB_CODES = {
    PERMISSION_DENIED: "permission_denied_by_host",
    CALL_ENDED: "meeting_ended_by_host",
    FATAL: "invalid_meeting_url",
}

_MESSAGES = {
    "ready": "Bot is ready to join.",
    JOINING: "Bot is joining the call.",
    WAITING_ROOM: "Bot is in the waiting room.",
    IN_CALL: "Bot is in the call, not recording.",
    PERMISSION_ALLOWED: "The host allowed the recording.",
    PERMISSION_DENIED: "The host denied the recording.",
    RECORDING: "Bot is recording.",
    CALL_ENDED: "Bot left the call.",
    DONE: "Bot is done.",
    FATAL: "Bot failed.",
}


def status_change(code: str, sub_code: str | None, at: str) -> dict[str, Any]:
    """One ``status_changes`` entry (the spec's BotEvent types ``sub_code`` as a string)."""
    return {
        "code": code,
        "message": _MESSAGES.get(code, ""),
        "sub_code": sub_code or "",
        "created_at": at,
    }


def current_code(bot: dict[str, Any]) -> str:
    return bot["status_changes"][-1]["code"]


def is_started(bot: dict[str, Any], now: datetime) -> bool:
    """Past "ready": moved on by the lifecycle control, or its join time has come."""
    return current_code(bot) != "ready" or is_dispatched(bot, now)


def steps_to(bot: dict[str, Any], target: str, *, waiting_room: bool) -> list[str]:
    """The statuses a bot passes through from where it is to ``target``, in Recall's order."""
    code = current_code(bot)
    if code in ENDINGS:
        raise ValueError(f"Bot {bot['id']} has ended ({code}); it cannot become {target!r}.")
    if target == FATAL:
        return [FATAL]
    path = (
        DENIED_PATH if target == PERMISSION_DENIED or code == PERMISSION_DENIED else RECORDED_PATH
    )
    if target not in path:
        raise ValueError(f"Unknown bot status {target!r}; expected one of {sorted(_MESSAGES)}.")
    done = path.index(code) + 1 if code in path else 0
    wanted = path.index(target) + 1
    if wanted <= done:
        raise ValueError(f"Bot {bot['id']} is already {code!r}; it cannot go back to {target!r}.")
    return [step for step in path[done:wanted] if waiting_room or step != WAITING_ROOM]


def is_dispatched(bot: dict[str, Any], now: datetime) -> bool:
    """A bot has left the schedule once its join time passed, or at once when it has none."""
    join_at = bot["join_at"]
    return join_at is None or parse_ts(join_at) <= now


def render_bot(bot: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The Bot API's JSON for a bot record."""
    config = bot["bot_config"]
    changes = list(bot["status_changes"])
    if is_dispatched(bot, now) and current_code(bot) == "ready":
        changes.append(status_change(JOINING, None, bot["join_at"] or bot["created_at"]))
    rendered: dict[str, Any] = {
        "id": bot["id"],
        "meeting_url": structured_meeting_url(bot["meeting_url"]),
        "bot_name": bot["bot_name"],
        "join_at": None if is_started(bot, now) else bot["join_at"],
        "metadata": bot["metadata"],
        "status_changes": changes,
        "recordings": [],
        "calendar_meetings": [],
        "slack_team": None,
    }
    for field in CONFIG_FIELDS:
        rendered[field] = config.get(field)
    return rendered


def bot_status(bot: dict[str, Any], now: datetime) -> str:
    code = current_code(bot)
    return JOINING if code == "ready" and is_dispatched(bot, now) else code


class BotStore:
    """All bots of the workspace, and the one bot per deduplication key of managed scheduling."""

    def __init__(self) -> None:
        self.bots: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}

    def create(
        self,
        now: datetime,
        *,
        meeting_url: str,
        join_at: datetime | None,
        config: dict[str, Any],
        deduplication_key: str | None = None,
    ) -> dict[str, Any]:
        bot = {
            "id": str(uuid.uuid4()),
            "created_at": format_ts(now),
            "status_changes": [status_change("ready", None, format_ts(now))],
            "event_ids": [],
            "deduplication_key": deduplication_key,
        }
        self.configure(bot, meeting_url=meeting_url, join_at=join_at, config=config)
        self.bots[bot["id"]] = bot
        if deduplication_key is not None:
            self.by_key[deduplication_key] = bot["id"]
        return bot

    @staticmethod
    def configure(
        bot: dict[str, Any], *, meeting_url: str, join_at: datetime | None, config: dict[str, Any]
    ) -> None:
        """Replace a bot's whole config (managed scheduling never merges configs)."""
        bot["bot_config"] = dict(config)
        bot["meeting_url"] = meeting_url
        bot["join_at"] = format_time(join_at) if join_at else None
        bot["bot_name"] = config.get("bot_name") or DEFAULT_BOT_NAME
        bot["metadata"] = dict(config.get("metadata") or {})

    def delete(self, bot_id: str) -> None:
        bot = self.bots.pop(bot_id, None)
        key = bot["deduplication_key"] if bot else None
        if key is not None and self.by_key.get(key) == bot_id:
            del self.by_key[key]

    def attach(self, bot: dict[str, Any], event_id: str) -> None:
        if event_id not in bot["event_ids"]:
            bot["event_ids"] = [*bot["event_ids"], event_id]

    def detach(self, bot_id: str, event_id: str) -> None:
        """Remove an event from a bot; the bot goes when no event uses it any more."""
        bot = self.bots.get(bot_id)
        if bot is None:
            return
        bot["event_ids"] = [other for other in bot["event_ids"] if other != event_id]
        if not bot["event_ids"]:
            self.delete(bot_id)
