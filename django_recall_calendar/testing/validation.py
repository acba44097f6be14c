"""Field checks for request bodies and query strings, collecting DRF-style error lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .clock import parse_ts
from .errors import invalid, not_found

REQUIRED = "This field is required."


class Errors(dict[str, Any]):
    """Field name -> messages (or a nested Errors); raise them all at once as one 400."""

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


# Create Bot (OpenAPI ``Bot``): the properties a request may set, and those holding an object.
#: Create Bot's fields that hold an object (the emulator echoes them on a bot, null when unset).
BOT_OBJECT_FIELDS = (
    "recording_config",
    "output_media",
    "automatic_video_output",
    "automatic_audio_output",
    "chat",
    "automatic_leave",
    "variant",
    "zoom",
    "google_meet",
    "breakout_room",
)
BOT_WRITABLE_FIELDS = frozenset(
    {"meeting_url", "bot_name", "join_at", "metadata", *BOT_OBJECT_FIELDS}
)
BOT_OBJECT_FIELDS = BOT_WRITABLE_FIELDS - {"meeting_url", "bot_name", "join_at", "metadata"}
BOT_NAME_MAX_LENGTH = 100


def bot_config_errors(config: dict[str, Any], *, strict: bool) -> Errors:
    """What Recall's Create Bot schema refuses in a bot config (strict: unknown keys too)."""
    errors = Errors()
    string(config, "bot_name", errors, max_length=BOT_NAME_MAX_LENGTH)
    string(config, "meeting_url", errors)
    timestamp(config.get("join_at"), "join_at", errors)
    metadata = config.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str | None) for v in metadata.values())
    ):
        errors.add("metadata", "Expected an object of strings.")
    for name in BOT_OBJECT_FIELDS & config.keys():
        if config[name] is not None and not isinstance(config[name], dict):
            errors.add(name, "Expected a dictionary of items.")
    if strict:
        for name in sorted(config.keys() - BOT_WRITABLE_FIELDS):
            errors.add(name, "Unknown field.")
    return errors
