"""Scheduling backends: how a bot reaches a meeting, picked by the ``SCHEDULING_MODE`` setting.

As with Django's session and cache engines, the rest of the app talks to one small interface
(:class:`~.base.SchedulingBackend`) and :func:`get_backend` is the only reader of the setting. It is
read at call time (``override_settings`` works) and each backend is built once.
"""

from __future__ import annotations

from functools import cache

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .. import conf
from .base import SchedulingBackend

BACKENDS = {
    "managed": "django_recall_calendar.backends.managed.ManagedBackend",
    "self_managed": "django_recall_calendar.backends.self_managed.SelfManagedBackend",
}

__all__ = ["BACKENDS", "SchedulingBackend", "get_backend"]


def get_backend() -> SchedulingBackend:
    """The backend of the configured scheduling mode; ImproperlyConfigured names a mistyped one."""
    mode = conf.get("SCHEDULING_MODE")
    if not isinstance(mode, str) or mode not in BACKENDS:
        raise ImproperlyConfigured(
            f"RECALL_CALENDAR['SCHEDULING_MODE'] is {mode!r}; expected one of "
            f"{', '.join(BACKENDS)}."
        )
    return _build(BACKENDS[mode])


@cache
def _build(path: str) -> SchedulingBackend:
    return import_string(path)()
