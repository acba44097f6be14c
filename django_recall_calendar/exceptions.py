"""Errors raised when talking to Recall.

Messages are built from Recall's answer only (status, code, message); request bodies and headers
never enter them, so an API key, client secret or refresh token cannot leak through an exception.
"""

from __future__ import annotations

from typing import Any


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
    ) -> None:
        self.message = message
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


class RecallAuthenticationError(RecallError):
    """401 or 403: a wrong API key, or Recall's firewall refused the request."""


class RecallNotFoundError(RecallError):
    """404: the calendar, event or bot does not exist (in this region)."""


class RecallInvalidRequestError(RecallError):
    """400 (and other 4xx): Recall refused the request as invalid."""


class RecallRateLimitError(RecallError):
    """429 that persisted after every retry."""


class RecallServerError(RecallError):
    """5xx (or 409/507 after retries): Recall could not serve the request."""


class RecallConnectionError(RecallError):
    """No answer: connection refused or reset, or a timeout."""
