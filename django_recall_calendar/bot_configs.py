"""Who may set what in a bot config, and what the database and Recall accept in one.

A bot config has owners. The host's ``BOT_CONFIG`` setting decides where bots go and where their
data flows; staff (the admin) may set anything else for one meeting; an end user (the REST API,
the pages) only the keys of ``USER_BOT_CONFIG_KEYS``. A meeting's link and start always come from
the event itself. Every config is checked here before Recall is called, so a refusal is a clear
400 and nothing is half done (Recall acting on a config this database then cannot store).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from . import conf

__all__ = [
    "EVENT_FIELDS",
    "MAX_BYTES",
    "STEERING_KEYS",
    "config_problem",
    "deep_merge",
    "own_config",
    "staff_problem",
    "steering_keys",
    "user_keys",
    "user_problem",
    "without_event_fields",
]

#: The largest config (serialized as UTF-8 JSON) a meeting may keep: far above any real one, far
#: below what would make every row, sync and Recall call heavy.
MAX_BYTES = 16 * 1024

#: Always the event's own (its link, its start): nobody sends a bot elsewhere or at another time.
EVENT_FIELDS = ("meeting_url", "join_at")

#: Keys (dotted paths) that decide where a bot goes, as whom, or where its data flows: never an
#: end user's. A key naming a URL, endpoint, webhook or callback anywhere counts too.
STEERING_KEYS = (
    *EVENT_FIELDS,
    "webhook_url",
    "metadata",  # self-managed scheduling finds its bots by a key kept in it
    "recording_config.realtime_endpoints",
    "recording_config.transcript.provider",  # third-party accounts, their callback URLs
    "output_media",  # a web page the bot shows to the meeting
    "zoom",  # token URLs fetched for the bot
    "google_meet",  # the host's signed-in Google accounts
)
STEERING_WORDS = ("url", "endpoint", "webhook", "callback")

#: Recall's Create Bot fields that hold an object, and its published string limits.
OBJECT_FIELDS = (
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
STRING_LIMITS = {
    "bot_name": 100,
    "chat.on_bot_join.message": 4096,
    "chat.on_participant_join.message": 4096,
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``, merging nested dicts instead of replacing them."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def without_event_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without the event's own fields: Recall takes them from the event."""
    return {key: value for key, value in config.items() if key not in EVENT_FIELDS}


def own_config(event_config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The part of a meeting's stored config that differs from ``BOT_CONFIG`` ({} when none):
    what makes its bot its own rather than the one every copy of the meeting shares."""
    shared = without_event_fields(conf.get("BOT_CONFIG") or {})
    mine = without_event_fields(deep_merge(shared, event_config or {}))
    return {} if mine == shared else without_event_fields(event_config or {})


def _paths(config: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Every (dotted path, value) of ``config``, objects included, depth first."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        yield path, value
        if isinstance(value, Mapping):
            yield from _paths(value, path + ".")


def _storable_problem(value: Any, path: str) -> str:
    """Why PostgreSQL's jsonb or SQLite's JSON check would refuse ``value`` ("" when neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: numbers must be finite (not NaN, Infinity or 1e999)."
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path}: text may not contain a NUL character."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{path}: text may not contain a lone surrogate."
    if isinstance(value, Mapping):
        for key, item in value.items():
            problem = _storable_problem(key, path) or _storable_problem(item, f"{path}.{key}")
            if problem:
                return problem
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _storable_problem(item, f"{path}[{index}]")
            if problem:
                return problem
    return ""


def _recall_problem(config: Mapping[str, Any]) -> str:
    """What Recall's Create Bot schema would refuse in ``config`` (the part this app relies on)."""
    metadata = config.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, Mapping)
        and all(isinstance(value, str | None) for value in metadata.values())
    ):
        return "bot_config.metadata must be an object of strings."
    for name in OBJECT_FIELDS:
        if config.get(name) is not None and not isinstance(config[name], Mapping):
            return f"bot_config.{name} must be an object."
    values = dict(_paths(config))
    for path, limit in STRING_LIMITS.items():
        value = values.get(path)
        if value is not None and not isinstance(value, str):
            return f"bot_config.{path} must be text."
        if value is not None and len(value) > limit:
            return f"bot_config.{path} may be at most {limit} characters long."
    return ""


def config_problem(config: Any) -> str:
    """What makes ``config`` unusable by anyone ("" when nothing): not an object, not storable
    JSON, larger than :data:`MAX_BYTES`, or refused by Recall's schema."""
    if not isinstance(config, Mapping):
        return "bot_config must be a JSON object."
    problem = _storable_problem(config, "bot_config")
    if problem:
        return problem
    size = len(json.dumps(config, ensure_ascii=False).encode("utf-8"))
    if size > MAX_BYTES:
        return f"bot_config is {size} bytes; at most {MAX_BYTES} are accepted."
    return _recall_problem(config)


def staff_problem(config: Any) -> str:
    """:func:`config_problem`, and a meeting's link and start are always the event's own."""
    problem = config_problem(config)
    if problem:
        return problem
    fixed = [key for key in EVENT_FIELDS if key in config]
    if fixed:
        return (
            f"bot_config.{fixed[0]} cannot be set: a bot always joins its own meeting's link at "
            "its start."
        )
    return ""


def user_keys() -> tuple[str, ...]:
    """The ``USER_BOT_CONFIG_KEYS`` setting: the dotted keys an end user may set."""
    return tuple(conf.get("USER_BOT_CONFIG_KEYS") or ())


def _allowed(path: str, allowed: tuple[str, ...]) -> bool:
    return any(path == key or path.startswith(key + ".") for key in allowed)


def user_problem(config: Any, allowed: tuple[str, ...] | None = None) -> str:
    """:func:`config_problem`, and every key is one of ``allowed`` (the setting's by default)
    or inside one. The first other key is named: it is refused, never silently dropped."""
    problem = config_problem(config)
    if problem:
        return problem
    allowed = user_keys() if allowed is None else allowed
    for path, value in _paths(config):
        inside_one = any(key.startswith(path + ".") for key in allowed)
        if _allowed(path, allowed) or (inside_one and isinstance(value, Mapping)):
            continue
        keys = ", ".join(allowed) or "none"
        return f"bot_config.{path} is not yours to set (you may set: {keys})."
    return ""


def _steers(key: str) -> bool:
    """Whether allowing ``key`` (and everything inside it) lets a user steer the bot."""
    parts = key.lower().split(".")
    if any(word in part for part in parts for word in STEERING_WORDS):
        return True
    return any(
        key == steering or key.startswith(steering + ".") or steering.startswith(key + ".")
        for steering in STEERING_KEYS
    )


def steering_keys(keys: Iterable[str]) -> list[str]:
    """The entries of ``keys`` that would let an end user steer a bot (for the system check)."""
    return [key for key in keys if _steers(key)]
