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

DEFAULT_BOT_NAME = "Meeting Notetaker"

# Bot fields the API shows; null when the request did not set them.
CONFIG_FIELDS = (
    "recording_config",
    "output_media",
    "automatic_video_output",
    "automatic_audio_output",
    "chat",
    "automatic_leave",
    "variant",
    "zoom",
    "google_meet",
    "breakout_room",
)


def is_dispatched(bot: dict[str, Any], now: datetime) -> bool:
    """A bot has left the schedule once its join time passed, or at once when it has none."""
    join_at = bot["join_at"]
    return join_at is None or parse_ts(join_at) <= now


def render_bot(bot: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The Bot API's JSON for a bot record."""
    config = bot["bot_config"]
    changes = list(bot["status_changes"])
    if is_dispatched(bot, now):
        changes.append(
            {
                "code": "joining_call",
                "message": "Bot is joining the call.",
                "sub_code": "",
                "created_at": bot["join_at"] or bot["created_at"],
            }
        )
    rendered: dict[str, Any] = {
        "id": bot["id"],
        "meeting_url": structured_meeting_url(bot["meeting_url"]),
        "bot_name": bot["bot_name"],
        "join_at": None if is_dispatched(bot, now) else bot["join_at"],
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
    return "joining_call" if is_dispatched(bot, now) else "ready"


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
            "status_changes": [
                {
                    "code": "ready",
                    "message": "Bot is ready to join.",
                    "sub_code": "",
                    "created_at": format_ts(now),
                }
            ],
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
