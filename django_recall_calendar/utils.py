"""Small helpers shared by several modules."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
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
    return _uuid_from_text(value)


@lru_cache(maxsize=1024)
def _uuid_from_text(value: str) -> UUID | None:
    """Cached: a sync reads its calendar's id on every event of every page, and ``UUID(text)``
    costs ten times a cache hit (the recent ids stay; events' own ids pass through)."""
    try:
        return UUID(value)
    except ValueError:
        return None
