"""What a calendar's ``status_changes`` from Recall say about its latest disconnection.

Recall leaves the entries untyped (its OpenAPI document gives ``status_changes`` no type) and only
says a disconnection carries "additional details" there, such as a Microsoft Graph error code. So
no key is assumed: the latest entry that names the ``disconnected`` status is the disconnection,
and every field of it that is neither a status nor a time is a detail, shown as Recall wrote it.
"""

from __future__ import annotations

import json
from typing import Any

from .utils import parse_datetime_or_none

DISCONNECTED = "disconnected"
#: Values that name a status rather than explain one.
STATUSES = frozenset({"connecting", "connected", DISCONNECTED})
#: Longest text shown (a Graph error can carry a long message).
MAX_LENGTH = 500


def disconnection_details(changes: Any) -> str:
    """The details of the latest disconnection in ``changes`` ("" when Recall gave none)."""
    if not isinstance(changes, list):
        return ""
    for change in reversed(changes):
        if isinstance(change, dict) and DISCONNECTED in change.values():
            return _details(change)[:MAX_LENGTH]
    return ""


def disconnected_between(before: Any, after: Any) -> bool:
    """Whether ``after`` records a disconnection ``before`` did not: Recall only appends, so a
    disconnection followed by a reconnection between two looks still shows here."""
    return _disconnections(after) > _disconnections(before)


def _disconnections(changes: Any) -> int:
    if not isinstance(changes, list):
        return 0
    return sum(1 for c in changes if isinstance(c, dict) and DISCONNECTED in c.values())


def _details(change: dict[str, Any]) -> str:
    shown = {
        str(key): value if isinstance(value, str) else json.dumps(value, default=str)
        for key, value in change.items()
        if not _is_status_or_time(value)
    }
    if len(shown) == 1:
        return next(iter(shown.values()))
    return "; ".join(f"{key}: {value}" for key, value in shown.items())


def _is_status_or_time(value: Any) -> bool:
    if value is None or value == "":
        return True
    return isinstance(value, str) and (
        value in STATUSES or parse_datetime_or_none(value) is not None
    )
