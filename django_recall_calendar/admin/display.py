"""Rendering helpers shared by the ModelAdmins: formatted JSON with secrets masked, durations."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

#: Keys whose values are never shown, whatever object they appear in. ``raw`` is stored stripped of
#: secrets already; masking again at render time means a row written by older code or by hand still
#: cannot leak one onto an admin page.
SECRET_KEY_PATTERN = re.compile(
    r"secret|refresh_token|access_token|api_key|apikey|password|authorization", re.IGNORECASE
)
MASK = "********"


def mask_secrets(value: Any) -> Any:
    """A copy of a JSON value with the value of every secret-looking key replaced by a mask."""
    if isinstance(value, dict):
        return {
            key: MASK if SECRET_KEY_PATTERN.search(str(key)) else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


def pretty_json(value: Any) -> SafeString:
    """A JSON value pretty-printed in an escaped ``<pre>``, secrets masked."""
    text = json.dumps(
        mask_secrets(value), indent=2, sort_keys=True, ensure_ascii=False, default=str
    )
    return format_html('<pre class="recall-json">{}</pre>', text)


def human_duration(duration: timedelta) -> str:
    """A duration as staff read it: "45 min", "1 h 30 min", "2 days"."""
    minutes = int(duration.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(_("%d d") % days)
    if hours:
        parts.append(_("%d h") % hours)
    if minutes or not parts:
        parts.append(_("%d min") % minutes)
    return " ".join(parts)
