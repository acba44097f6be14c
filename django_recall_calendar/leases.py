"""Named leases in the database: one holder at a time across processes and machines.

The workspace sweep must run once at a time for the whole site (two sweeps would list the same
pages twice and spend the budget twice). Process memory
cannot say that; a row taken by a conditional UPDATE can. A holder that dies frees its lease once
``taken_at`` is older than the taker's time to live; a long holder renews it as it goes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import Lease

SWEEP = "workspace-sync"
BOT_RETRY = "bot-retry"


class Held:
    """A lease this process holds."""

    def __init__(self, name: str, holder: str) -> None:
        self.name, self.holder = name, holder

    def renew(self) -> bool:
        """Restart the lease's time; False when it went stale and another process took it."""
        return bool(
            Lease.objects.filter(name=self.name, holder=self.holder).update(taken_at=timezone.now())
        )

    def release(self) -> None:
        Lease.objects.filter(name=self.name, holder=self.holder).update(holder="")


def acquire(name: str, ttl: timedelta) -> Held | None:
    """Take the lease ``name`` if it is free or its holder's ``ttl`` ran out, else None."""
    now = timezone.now()
    holder = uuid.uuid4().hex
    free = Q(holder="") | Q(taken_at__lte=now - ttl)
    if not Lease.objects.filter(free, name=name).update(holder=holder, taken_at=now):
        try:
            with transaction.atomic():
                Lease.objects.create(name=name, holder=holder, taken_at=now)
        except IntegrityError:  # it exists: held by someone else (or taken just now)
            return None
    return Held(name, holder)


@contextmanager
def holding(name: str, ttl: timedelta) -> Iterator[Held | None]:
    """``acquire`` for a ``with`` block, released at its end; None when another holds it."""
    held = acquire(name, ttl)
    try:
        yield held
    finally:
        if held is not None:
            held.release()


def first_to_mark(name: str, mark: str) -> bool:
    """Record ``mark`` under ``name``; True only for the first caller with that mark (e.g. one
    retry task queued per retry time, however many workers see it due)."""
    if (
        Lease.objects.filter(name=name)
        .exclude(holder=mark)
        .update(holder=mark, taken_at=timezone.now())
    ):
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=mark, taken_at=timezone.now())
    except IntegrityError:
        return False
    return True


def clear_mark(name: str) -> None:
    """Forget the mark under ``name``: the next :func:`first_to_mark`, whatever its mark, wins."""
    Lease.objects.filter(name=name).update(holder="")
