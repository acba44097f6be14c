"""Field checks for request bodies and query strings, collecting DRF-style error lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .clock import parse_ts
from .errors import invalid, not_found

REQUIRED = "This field is required."


class Errors(dict[str, list[str]]):
    """Field name -> messages; raise them all at once as one 400."""

    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self:
            raise invalid(dict(self))


def body_object(body: Any) -> dict[str, Any]:
    """The JSON body as an object; anything else is a 400 like DRF's."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid({"non_field_errors": ["Invalid data. Expected a dictionary."]})
    return body


def string(
    body: dict, field: str, errors: Errors, *, required: bool = False, max_length: int = 2000
) -> str | None:
    """A string field (absent -> None), checked for presence, type and length."""
    if field not in body or body[field] is None:
        if required:
            errors.add(field, REQUIRED)
        elif field in body:
            errors.add(field, "This field may not be null.")
        return None
    value = body[field]
    if not isinstance(value, str):
        errors.add(field, "Not a valid string.")
        return None
    if required and not value.strip():
        errors.add(field, "This field may not be blank.")
    elif len(value) > max_length:
        errors.add(field, f"Ensure this field has no more than {max_length} characters.")
    return value


def choice(value: Any, field: str, choices: tuple[str, ...], errors: Errors) -> str | None:
    if value is None:
        return None
    if value not in choices:
        errors.add(field, f'"{value}" is not a valid choice.')
        return None
    return value


def timestamp(value: Any, field: str, errors: Errors) -> datetime | None:
    """A date-time (None stays None); a malformed one is recorded as an error."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return parse_ts(value)
    except ValueError:
        pass
    errors.add(field, "Enter a valid date/time.")
    return None


def uuid_text(value: str, field: str, errors: Errors) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        errors.add(field, f"“{value}” is not a valid UUID.")
        return None


def boolean(value: str, field: str, errors: Errors) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    errors.add(field, "Select a valid choice. That choice is not one of the available choices.")
    return None


def check_uuid_path(value: str) -> str:
    """A path id that is not a UUID cannot name anything: 404, as Recall's URL patterns answer."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise not_found() from None
