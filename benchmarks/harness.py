"""What every benchmark needs: Django on a scratch database, an emulator, timers, SQL counters."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def setup_django(database: str) -> None:
    """Configure Django with ``benchmarks.settings`` for ``database`` (sqlite or postgres)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_DATABASE"] = database
    import django

    django.setup()


@contextmanager
def scratch_database() -> Iterator[str]:
    """Create the settings' scratch database (``TEST["NAME"]``), migrate it, drop it afterwards."""
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield name
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


#: Emulator options for a benchmark: no rate limits, no delayed, repeated or reordered webhooks.
ORDERLY = {"unruly": False, "rate_limits": False}


@contextmanager
def emulator(**options: Any) -> Iterator[Any]:
    """A running RecallEmulator that records webhooks only, with the settings pointed at it.

    Orderly (:data:`ORDERLY`) unless told otherwise: these benchmarks time our code, and Recall's
    rate limits would time a 60 s ``Retry-After`` instead.
    """
    from django.conf import settings

    from django_recall_calendar.testing import RecallEmulator

    current = settings.RECALL_CALENDAR
    with RecallEmulator(
        api_key=current["API_KEY"],
        webhook_secret=current["WEBHOOK_SECRET"],
        **{**ORDERLY, **options},
    ) as running:
        settings.RECALL_CALENDAR = {**current, "BASE_URL": running.base_url}
        try:
            yield running
        finally:
            settings.RECALL_CALENDAR = current


def make_calendar(running_emulator: Any, email: str = "owner@example.com", **fields: Any) -> Any:
    """A connected calendar at the emulator and its local row (owned by a new user)."""
    from django.contrib.auth import get_user_model

    from django_recall_calendar.models import Calendar

    user, _ = get_user_model().objects.get_or_create(username=email, defaults={"email": email})
    remote = running_emulator.create_calendar("google_calendar", oauth_email=email)
    running_emulator.connect_calendar(remote["id"], email=email)
    return Calendar.objects.create(
        user=user,
        recall_id=remote["id"],
        platform="google_calendar",
        oauth_email=email,
        platform_email=email,
        status="connected",
        **fields,
    )


class StatementCounter:
    """Counts SQL statements sent on the default connection (an executemany counts once)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)

    @contextmanager
    def counting(self) -> Iterator[StatementCounter]:
        from django.db import connection

        with connection.execute_wrapper(self):
            yield self


def timed(func: Callable[[], Any]) -> tuple[float, Any, int]:
    """(seconds, result, SQL statements) of one call."""
    counter = StatementCounter()
    with counter.counting():
        start = time.perf_counter()
        result = func()
        seconds = time.perf_counter() - start
    return seconds, result, counter.count


def median_time(func: Callable[[], Any], repeat: int) -> float:
    """The median wall time of ``repeat`` calls (after one warm-up call)."""
    func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
