"""The shared Recall budget in the database, for a host without Redis: a ``limits`` storage.

Registered with the ``limits`` library under ``database://`` so the same moving-window limiter
runs on it. A take locks its bucket's counter row first (``UPDATE``: a row lock on PostgreSQL, the
write lock on SQLite), so two processes never both see the last free token.
"""

from __future__ import annotations

import time

from django.db import DatabaseError, transaction
from django.db.models import F
from limits.storage import MovingWindowSupport, Storage

from .models import BudgetCounter, BudgetEntry


class DatabaseStorage(Storage, MovingWindowSupport):
    """Moving-window entries (``BudgetEntry``) and counters (``BudgetCounter``) in Django's
    default database."""

    STORAGE_SCHEME = ["database"]

    @property
    def base_exceptions(self) -> type[Exception]:
        return DatabaseError

    def _lock(self, key: str) -> None:
        """Lock ``key``'s counter row for the rest of the transaction (created when missing)."""
        if not BudgetCounter.objects.filter(key=key).update(value=F("value")):
            BudgetCounter.objects.get_or_create(key=key)
            BudgetCounter.objects.filter(key=key).update(value=F("value"))

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with transaction.atomic():
            self._lock(f"window/{key}")
            now = time.time()
            entries = BudgetEntry.objects.filter(key=key)
            entries.filter(at__lte=now - expiry).delete()
            if entries.count() + amount > limit:
                return False
            BudgetEntry.objects.bulk_create([BudgetEntry(key=key, at=now)] * amount)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        times = list(
            BudgetEntry.objects.filter(key=key, at__gt=now - expiry)
            .order_by("at")
            .values_list("at", flat=True)
        )
        return (times[0] if times else now), len(times)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        with transaction.atomic():
            self._lock(key)
            now = time.time()
            counter = BudgetCounter.objects.get(key=key)
            if counter.expires_at <= now:
                counter.value, counter.expires_at = 0, now + expiry
            counter.value += amount
            counter.save(update_fields=["value", "expires_at"])
        return counter.value

    def get(self, key: str) -> int:
        counter = BudgetCounter.objects.filter(key=key, expires_at__gt=time.time()).first()
        return counter.value if counter else 0

    def get_expiry(self, key: str) -> float:
        counter = BudgetCounter.objects.filter(key=key).first()
        return counter.expires_at if counter else time.time()

    def check(self) -> bool:
        try:
            BudgetCounter.objects.exists()
        except DatabaseError:
            return False
        return True

    def reset(self) -> int | None:
        deleted = BudgetEntry.objects.all().delete()[0]
        return deleted + BudgetCounter.objects.all().delete()[0]

    def clear(self, key: str) -> None:
        BudgetEntry.objects.filter(key=key).delete()
        BudgetCounter.objects.filter(key__in=[key, f"window/{key}"]).delete()
