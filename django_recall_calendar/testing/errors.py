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


def invalid(errors: dict[str, Any], message: str | None = None) -> ApiError:
    """A 400 with Recall's ``invalid_request_data`` envelope."""
    if message is None:
        message = _first_message(errors)
    return ApiError(400, {"code": "invalid_request_data", "message": message, "errors": errors})


def _first_message(errors: dict[str, Any]) -> str:
    """``field: message`` of the first error; nested names joined (``bot_config: bot_name``)."""
    field, messages = next(iter(errors.items()))
    text = _first_message(messages) if isinstance(messages, dict) else messages[0]
    return text if field == "non_field_errors" else f"{field}: {text}"
