"""Which meeting platform a link belongs to, and the structured form Recall's Bot API returns."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

_HOSTS: list[tuple[str, str]] = [
    ("zoom.us", "zoom"),
    ("zoomgov.com", "zoom"),
    ("meet.google.com", "google_meet"),
    ("teams.microsoft.com", "microsoft_teams"),
    ("teams.live.com", "microsoft_teams_live"),
    ("webex.com", "webex"),
    ("gotomeeting.com", "goto_meeting"),
    ("goto.com", "goto_meeting"),
]


def meeting_platform(url: str | None) -> str | None:
    """The ``meeting_platform`` enum value for a link, or None for an unsupported one."""
    if not url:
        return None
    host = (urlsplit(url).hostname or "").lower()
    for suffix, platform in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return platform
    return None


def structured_meeting_url(url: str) -> dict[str, Any] | None:
    """The Bot API's ``meeting_url`` object for a link, or None when the platform is unsupported."""
    platform = meeting_platform(url)
    if platform is None:
        return None
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    last = segments[-1] if segments else ""
    if platform == "zoom":
        password = parse_qs(parts.query).get("pwd", [None])[0]
        digits = re.sub(r"\D", "", last)
        return {"meeting_id": digits or last, "meeting_password": password, "platform": "zoom"}
    if platform in ("microsoft_teams", "microsoft_teams_live"):
        return {
            "meeting_id": last or None,
            "meeting_password": None,
            "organizer_id": None,
            "tenant_id": None,
            "message_id": None,
            "thread_id": None,
            "business_meeting_id": None,
            "business_meeting_password": None,
            "platform": platform,
        }
    if platform == "webex":
        subdomain = (parts.hostname or "").split(".")[0]
        return {
            "meeting_subdomain": subdomain,
            "meeting_mtid": parse_qs(parts.query).get("MTID", [last])[0],
            "meeting_path": parts.path,
            "platform": "webex",
        }
    return {"meeting_id": last, "platform": platform}
