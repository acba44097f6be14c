"""Small helpers shared by several modules."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.utils.dateparse import parse_datetime


def parse_datetime_or_none(value: object) -> datetime | None:
    """An aware datetime from Recall's ISO 8601 text; None for null, empty or malformed values."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def email_domain(email: str | None) -> str:
    """The lower-cased domain of an address ("" for none): what "same organisation" compares."""
    return (email or "").rpartition("@")[2].strip().lower()


def parse_uuid(value: object) -> UUID | None:
    """A UUID from text (any of the forms ``uuid.UUID`` reads), or None for anything else."""
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None
