"""The viewer's time zone, reported by their browser, so pages say "bot joins at 14:00" in it.

The browser reports its IANA zone (``Intl.DateTimeFormat().resolvedOptions().timeZone``) in the
``recall_tz`` cookie, set by the ``recall_calendar/timezone_cookie.html`` snippet; this middleware
activates it for the request. Chosen over a profile field because the app owns no user profile and
the browser knows where the viewer is right now (travel included); a host with its own time zone
setting activates it in its own middleware instead, and this one leaves an active zone alone when
the cookie is absent.

The cookie is the viewer's own input: only names in the system's zone database are used, anything
else (a path, a long string, garbage) is ignored.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE_NAME = "recall_tz"
MAX_NAME_LENGTH = 64


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_from(value: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone a cookie value names (percent-encoded or not), or None for anything not in the
    zone database."""
    if not value or len(value) > 3 * MAX_NAME_LENGTH:
        return None
    name = unquote(value)
    if len(name) > MAX_NAME_LENGTH or name not in _known_zones():
        return None
    return zoneinfo.ZoneInfo(name)


class ViewerTimezoneMiddleware:
    """Activates the zone of the ``recall_tz`` cookie for the request, when it names one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = zone_from(request.COOKIES.get(COOKIE_NAME))
        if zone is None:
            return self.get_response(request)
        with timezone.override(zone):
            return self.get_response(request)
