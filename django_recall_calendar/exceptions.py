"""Errors raised when talking to Recall.

Messages are built from Recall's answer only (status, code, message); request bodies and headers
never enter them, so an API key, client secret or refresh token cannot leak through an exception.

Each error also says who must act: :meth:`RecallError.for_user` is the sentence an end user may
read (a misconfiguration is the site's to fix, an outage is to be retried), and
:meth:`RecallError.for_staff` names, for the site's staff, the setting to fix or that nothing is
theirs to fix. Neither ever holds a secret's value: settings are named, not shown.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext as _

#: What an end user reads when the site itself is misconfigured: nothing they can do but wait.
MISCONFIGURED = (
    "This site's calendar integration is misconfigured; staff have been told. "
    "Please try again later."
)


class RecallError(Exception):
    """Any failed call to Recall's API."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        errors: Any = None,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        #: Seconds Recall asked us to wait (its ``Retry-After``), when it said.
        self.retry_after = retry_after
        self.status_code = status_code
        self.code = code
        self.errors = errors
        self.method = method
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        status = f"[{self.status_code}] " if self.status_code else ""
        code = f"{self.code}: " if self.code else ""
        return f"{where}{status}{code}{self.message}"

    @property
    def reason(self) -> str:
        """Recall's answer without the request it answered, so equal failures read the same."""
        status = f"[{self.status_code}] " if self.status_code else ""
        code = f"{self.code}: " if self.code else ""
        return f"{status}{code}{self.message}"

    def for_user(self) -> str:
        """What an end user is told: Recall's own reason, which is about their request."""
        return _("The calendar service refused the request: %(reason)s") % {"reason": self.message}

    def for_staff(self) -> str:
        """What the site's staff are told (admin messages, logs)."""
        return self.reason

    def log(self, logger: logging.Logger, doing: str) -> None:
        """Log the failure for staff at the level it deserves: their action needed, or not."""
        logger.warning("%s failed: %s", doing, self.for_staff())


class _SiteMisconfigured(RecallError):
    """Recall refused this site itself: staff must fix a setting, the user can only wait."""

    def for_user(self) -> str:
        return _(MISCONFIGURED)

    def log(self, logger: logging.Logger, doing: str) -> None:
        logger.error("%s failed: %s", doing, self.for_staff())


class _Unavailable(RecallError):
    """Recall did not serve the request: nobody has anything to fix, a later try may work."""

    def for_user(self) -> str:
        return _("The calendar service did not answer; please try again in a few minutes.")

    def for_staff(self) -> str:
        return _(
            "%(reason)s (Recall did not serve the request; try again later, no setting of "
            "this site is at fault)"
        ) % {"reason": self.reason}


class RecallAuthenticationError(_SiteMisconfigured):
    """401 or 403: a wrong API key, or Recall's firewall refused the request."""

    def for_staff(self) -> str:
        if self.status_code == 403:
            fix = _(
                "Recall refused this site's request (403: its firewall, or a key without access): "
                "check RECALL_CALENDAR['API_KEY'] and RECALL_CALENDAR['REGION'] (or BASE_URL), "
                "and that RECALL_CALENDAR['BOT_CONFIG'] holds no localhost URL."
            )
        else:
            fix = _(
                "Recall refused this site's API key (401): set RECALL_CALENDAR['API_KEY'] to a "
                "key of your Recall workspace, and RECALL_CALENDAR['REGION'] to the region it "
                "was created in."
            )
        return f"{fix} [{self.reason}]"


class RecallNotFoundError(RecallError):
    """404: the calendar, event or bot does not exist (in this region)."""


class RecallInvalidRequestError(RecallError):
    """400 (and other 4xx): Recall refused the request as invalid."""


class RecallRateLimitError(_Unavailable):
    """429 that persisted after every retry."""


class RecallServerError(_Unavailable):
    """5xx (or 409/507 after retries): Recall could not serve the request."""


class RecallConnectionError(_Unavailable):
    """No answer: connection refused or reset, or a timeout."""
