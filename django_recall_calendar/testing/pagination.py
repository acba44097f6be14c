"""Cursor pagination over a list kept sorted by a key, as Recall's (DRF's) cursor pagination.

The cursor names the key of the last row served, not an offset, so rows inserted or moved while a
consumer pages never shift what it sees next.
"""

from __future__ import annotations

import base64
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from .errors import ApiError

Key = tuple[str, str]


def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key:
    """The key in a cursor; a malformed one is a 404, as DRF answers."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        first, second = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return str(first), str(second)
    except (ValueError, TypeError):
        raise ApiError(404, {"detail": "Invalid cursor"}) from None


def take_page(
    rows: Sequence[dict],
    key: Callable[[dict], Key],
    matches: Callable[[dict], bool],
    page_size: int,
    *,
    after: Key | None = None,
    start: Key | None = None,
) -> tuple[list[dict], Key | None]:
    """Up to ``page_size`` matching rows after ``after`` (or from ``start``), and the next key."""
    if after is not None:
        index = bisect_right(rows, after, key=key)
    elif start is not None:
        index = bisect_left(rows, start, key=key)
    else:
        index = 0
    page: list[dict] = []
    for position in range(index, len(rows)):
        row = rows[position]
        if not matches(row):
            continue
        if len(page) == page_size:
            return page, key(page[-1])
        page.append(row)
    return page, None


def next_url(base_url: str, path: str, query: dict[str, str], key: Key | None) -> str | None:
    """The absolute URL of the next page, keeping every filter of the request."""
    if key is None:
        return None
    params = {name: value for name, value in query.items() if name != "cursor"}
    params["cursor"] = encode_cursor(key)
    return f"{base_url}{path}?{urlencode(params)}"


def page_body(results: list[bytes], next_link: str | None, **extra: Any) -> bytes:
    """A paginated answer from rows already encoded (events cache their JSON)."""
    head = json.dumps({**extra, "next": next_link, "previous": None})[:-1].encode()
    return head + b', "results": [' + b", ".join(results) + b"]}"
