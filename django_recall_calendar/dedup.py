"""Deduplication keys: one Recall bot per meeting, however many connected calendars hold a copy.

Recall shares one bot between all events that send the same ``deduplication_key``, so the key must
be byte-identical for every copy of a meeting: the start time is always written in one UTC form and
the meeting URL is canonicalised (per-invitee and tracking parameters dropped, what identifies the
meeting kept). Different meetings (other id, other password) must never share a key.

Recall replaces a shared bot's whole config with each schedule call's, so copies of a meeting share
a bot only while their configs agree: a meeting with a config of its own (a user's bot name, staff's
settings) gets a key of its own, ending in a digest of that config, and so a bot of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import conf
from .bot_configs import own_config
from .utils import email_domain

if TYPE_CHECKING:
    from .models import CalendarEvent

#: Recall's limit on ``deduplication_key`` (CalendarEventAddBot, maxLength 2000).
MAX_KEY_LENGTH = 2000

#: Query parameters that never identify a meeting: tracking and per-viewer parameters.
NOISE_PARAMS = frozenset(
    {"fbclid", "gclid", "mc_cid", "mc_eid", "authuser", "hs", "context", "uname", "from", "ref"}
)

#: Characters kept literally when re-quoting a path, so ``%3a`` and ``%3A`` and ``:`` agree.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

_ZOOM_ID_PATHS = (
    re.compile(r"^/(?:j|wc/join|s)/(?P<id>\d+)$"),
    re.compile(r"^/wc/(?P<id>\d+)/(?:join|start)$"),
)


def _host_in(host: str, *domains: str) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def _query(pairs: list[tuple[str, str]], keep: frozenset[str] | None) -> str:
    """Sorted query string: only ``keep`` names when given, else all but the noise."""
    if keep is not None:
        chosen = [(k, v) for k, v in pairs if k in keep]
    else:
        chosen = [
            (k, v) for k, v in pairs if k.lower() not in NOISE_PARAMS and not k.startswith("utm_")
        ]
    return urlencode(sorted(chosen))


def canonical_meeting_url(url: str | None) -> str:
    """The form of ``url`` shared by every invitee's copy of the same meeting ("" for no URL)."""
    url = (url or "").strip()
    if not url:
        return ""
    if "://" not in url:
        url = "https://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url  # a bad port or IPv6 host: not parseable, so only this exact text matches it
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    path = quote(unquote(parts.path), safe=_PATH_SAFE).rstrip("/")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    keep: frozenset[str] | None = None

    if _host_in(host, "zoom.us", "zoomgov.com"):
        # Meeting ids are global: a company's vanity subdomain and usNNweb are the same meeting.
        scheme, host, port = (
            "https",
            "zoomgov.com" if host.endswith("zoomgov.com") else "zoom.us",
            None,
        )
        for pattern in _ZOOM_ID_PATHS:
            match = pattern.match(path)
            if match:
                path = f"/j/{match['id']}"
                break
        keep = frozenset({"pwd", "confno"})
    elif host == "meet.google.com":
        scheme, port, path, keep = "https", None, path.lower(), frozenset()
    elif _host_in(host, "teams.microsoft.com", "teams.microsoft.us", "teams.live.com"):
        # ``context`` carries the viewer's tenant/object ids; ``p`` is the passcode of /meet/ links.
        scheme, port, keep = "https", None, frozenset({"p"})
    elif _host_in(host, "webex.com", "webex.com.cn"):
        scheme, port, keep = "https", None, frozenset({"MTID", "PW", "siteurl"})

    if port is not None and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, path, _query(pairs, keep), ""))


def format_start(start: datetime) -> str:
    """The one UTC ISO 8601 form used in keys, e.g. ``2026-11-30T15:00:00Z`` (whole seconds)."""
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meeting_part(event: CalendarEvent) -> str:
    """``{start}-{url}``, with the URL hashed if the key would pass Recall's length limit."""
    url = canonical_meeting_url(event.meeting_url)
    if len(url) > MAX_KEY_LENGTH - 200:
        url = "sha256:" + hashlib.sha256(url.encode()).hexdigest()
    return f"{format_start(event.start_time)}-{url}"


SCHEMES: dict[str, Callable[[CalendarEvent], str]] = {
    "meeting": _meeting_part,
    "domain": lambda event: f"{_meeting_part(event)}-{email_domain(event.calendar.email)}",
    "event": lambda event: f"{_meeting_part(event)}-{event.recall_id}",
}


def key_function() -> Callable[[CalendarEvent], str]:
    """The key recipe chosen by ``DEDUPLICATION``: a scheme name or a dotted path to a callable."""
    setting = conf.get("DEDUPLICATION") or "meeting"
    if setting in SCHEMES:
        return SCHEMES[setting]
    try:
        function = import_string(setting)
    except ImportError as exc:
        known = ", ".join(SCHEMES)
        raise ImproperlyConfigured(
            f"RECALL_CALENDAR['DEDUPLICATION'] is {setting!r}: neither one of {known} "
            f"nor an importable callable ({exc})."
        ) from None
    if not callable(function):
        raise ImproperlyConfigured(f"RECALL_CALENDAR['DEDUPLICATION'] {setting!r} is not callable.")
    return function


#: Room kept for :func:`config_part` (``-config-`` and 16 hex digits).
CONFIG_PART_LENGTH = 24


def config_part(event: CalendarEvent) -> str:
    """``-config-<digest>`` for a meeting whose own config differs from ``BOT_CONFIG``, else "":
    equal configs give equal digests, so copies configured alike still share one bot."""
    own = own_config(event.bot_config)
    if not own:
        return ""
    text = json.dumps(own, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "-config-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def deduplication_key(event: CalendarEvent) -> str:
    """The key sent with every scheduling call for ``event``: the ``DEDUPLICATION`` recipe's,
    plus :func:`config_part` when the meeting has a config of its own."""
    key = key_function()(event)
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH - CONFIG_PART_LENGTH:
        raise ImproperlyConfigured(
            "The DEDUPLICATION callable must return a non-empty string of at most "
            f"{MAX_KEY_LENGTH - CONFIG_PART_LENGTH} characters, not {key!r:.80}."
        )
    return key + config_part(event)
