"""Errors the emulated API answers with, in Recall's (DRF's) body shapes."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answer: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class NotFound(ApiError, LookupError):
    """A 404; also a LookupError, so control methods fail as a dict lookup would."""


def not_found() -> ApiError:
    return NotFound(404, {"detail": "Not found."})


def invalid(errors: dict[str, list[str]], message: str | None = None) -> ApiError:
    """A 400 with Recall's ``invalid_request_data`` envelope."""
    if message is None:
        field, messages = next(iter(errors.items()))
        message = messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return ApiError(400, {"code": "invalid_request_data", "message": message, "errors": errors})
