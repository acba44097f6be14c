"""The app's settings, read from ``settings.RECALL_CALENDAR`` at call time.

Reading at call time (never caching at import) keeps ``override_settings`` working in tests and
lets a host change settings without restarting anything that imported this module.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SETTINGS_NAME = "RECALL_CALENDAR"

REGION_BASE_URLS = {
    "us-east-1": "https://us-east-1.recall.ai",
    "us-west-2": "https://us-west-2.recall.ai",
    "eu-central-1": "https://eu-central-1.recall.ai",
    "ap-northeast-1": "https://ap-northeast-1.recall.ai",
}

DEFAULTS: dict[str, Any] = {
    "API_KEY": None,
    "REGION": "us-east-1",
    "BASE_URL": None,
    "WEBHOOK_SECRET": None,
    "WEBHOOK_MAX_BODY_SIZE": 1024 * 1024,
    "BOT_CONFIG": {},
    # The bot config keys (dotted paths) an end user may set for a meeting (REST API, pages);
    # anything steering where a bot goes or where its data flows is refused by check E021.
    "USER_BOT_CONFIG_KEYS": ("bot_name",),
    "DEDUPLICATION": "meeting",
    "SCHEDULING_MODE": "managed",
    "DEFAULT_RECORDING_POLICY": "off",
    # Title words or phrases a new calendar starts with: such a meeting is not recorded.
    "DEFAULT_SKIP_TITLE_KEYWORDS": [],
    "TIMEOUT": 10.0,
    "MAX_RETRIES": 4,
    "RETRY_AFTER_CAP": 60.0,
    "BACKOFF_BASE": 0.5,
    "BACKOFF_CAP": 30.0,
    "TASK_BACKEND": "default",
    "TASK_QUEUE": "default",
    # Queue of the bot work (reconcile_bots, retry_bot_calls); None: TASK_QUEUE. On a backend
    # without priorities (RQ), a queue the workers take first puts bots ahead of the rest.
    "BOT_TASK_QUEUE": None,
    "WEBHOOK_RETRY_DELAYS": [5, 60, 300, 1800, 7200],
    # Seconds after which a worker's claim on a delivery (or a delivery never enqueued) counts as
    # lost: a crashed worker's; longer than any one delivery's processing may take.
    "WEBHOOK_CLAIM_TIMEOUT": 15 * 60,
    # Seconds a stored delivery may wait for others to join its push to the task queue (one
    # thread per process pushes at most that often); 0 pushes from the request that stored it.
    "WEBHOOK_HANDOFF_DELAY": 0,
    # The same for a self-managed bot's deduplication key claimed while its bot is being created.
    "SELF_MANAGED_CLAIM_TIMEOUT": 2 * 60,
    "PLATFORMS": {
        "google-oauth2": "google_calendar",
        "microsoft-graph": "microsoft_outlook",
    },
    "NOTIFY_DISCONNECTED_BY_EMAIL": False,
    # Absolute root of the host site (e.g. "https://app.example.com"), for links in emails sent
    # outside any request (a webhook marks a calendar disconnected in a background task).
    "SITE_URL": None,
    # Recall's published limits per workspace (OpenAPI x-throttles) less a 5% margin: calls of
    # other clients of the workspace and clock differences must not turn into 429s.
    "RATE_LIMITS": {
        "event_listings": "57/min",
        "calendar_listings": "57/min",
        "bot_scheduling": "570/min",
        "bot_v1": "57/min",
        "other": "285/min",
    },
    # Where the shared buckets live: None picks the Redis of a RedisCache default cache, else the
    # database; or a URI of the limits library ("redis://host:6379/1", "memory://").
    "RATE_LIMIT_STORAGE": None,
    "RATE_LIMIT_KEY_PREFIX": "recall-calendar",
    # Longest wait for a token: in a web request or command, and in a task (then it is deferred).
    "RATE_LIMIT_WAIT": 5.0,
    "RATE_LIMIT_TASK_WAIT": 2.0,
}

REQUIRED = frozenset({"API_KEY"})


def user_settings() -> dict[str, Any]:
    """The host's ``RECALL_CALENDAR`` dict, or an empty one."""
    value = getattr(settings, SETTINGS_NAME, None) or {}
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{SETTINGS_NAME} must be a dict, not {type(value).__name__}.")
    return value


def get(key: str) -> Any:
    """One setting, or its default; a missing required one names itself in the error."""
    if key not in DEFAULTS:
        raise KeyError(f"Unknown {SETTINGS_NAME} setting {key!r}.")
    value = user_settings().get(key, DEFAULTS[key])
    if key in REQUIRED and not value:
        raise ImproperlyConfigured(f"{SETTINGS_NAME}[{key!r}] is not set.")
    return value


def duration(key: str) -> timedelta:
    """A setting given in seconds, as a timedelta; anything but a finite number >= 0 names the key
    (NaN and infinity would fail in ``timedelta``, far from the setting)."""
    value = get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}[{key!r}] must be a number of seconds, not {value!r}."
        )
    return timedelta(seconds=value)


def base_url() -> str:
    """BASE_URL when set (the emulator uses it), else the URL of REGION."""
    explicit = get("BASE_URL")
    if explicit:
        return str(explicit).rstrip("/")
    region = get("REGION")
    try:
        return REGION_BASE_URLS[region]
    except KeyError:
        known = ", ".join(REGION_BASE_URLS)
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['REGION'] is {region!r}; expected one of {known}."
        ) from None


def webhook_secrets() -> list[str]:
    """WEBHOOK_SECRET as a list: one secret, or several while rotating."""
    value = get("WEBHOOK_SECRET")
    if not value:
        return []
    if isinstance(value, list | tuple):
        return [str(secret) for secret in value]
    return [str(value)]


def platform_for_backend(backend_name: str) -> str | None:
    """The Recall platform a social-auth backend connects, or None for other backends."""
    return get("PLATFORMS").get(backend_name)


def default_recording_policy() -> str:
    """The recording policy a new calendar starts with (a model field default)."""
    return get("DEFAULT_RECORDING_POLICY")


def default_skip_title_keywords() -> list[str]:
    """The title keywords a new calendar starts with (a model field default); a copy, so one
    calendar's list never aliases the setting's."""
    value = get("DEFAULT_SKIP_TITLE_KEYWORDS") or []
    if not isinstance(value, list | tuple) or not all(isinstance(word, str) for word in value):
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['DEFAULT_SKIP_TITLE_KEYWORDS'] must be a list of strings, "
            f"not {value!r}."
        )
    return list(value)
