"""Per-user rate limits on the REST API's writes: each write may cost Recall calls, and Recall's
rate limits are one budget for the whole workspace, so one user must not spend everyone's.

The scopes are DRF's own: a host sets their rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
(``None`` turns a scope off); without them the defaults below apply. Reads are not limited here.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

#: Changing a calendar's recording policy, or disconnecting it.
CALENDAR_WRITES = "recall_calendar_calendar_writes"
#: Sending or removing a meeting's bot.
BOT_WRITES = "recall_calendar_bot_writes"

DEFAULT_RATES = {CALENDAR_WRITES: "20/min", BOT_WRITES: "30/min"}


class WriteRateThrottle(ScopedRateThrottle):
    """The view's ``throttle_scope``, for unsafe methods only, at the host's rate or ours."""

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        # Read at call time (DRF reloads api_settings when settings change), not at import.
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        return rates[self.scope] if self.scope in rates else DEFAULT_RATES.get(self.scope)
