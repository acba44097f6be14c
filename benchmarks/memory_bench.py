"""Peak memory of a 100,000-event first sync, bot reconcile included, against its start.

The emulator runs in its own process (``benchmarks/emulator_process.py``), so only the syncing
process is measured: its resident set right before ``calendars.sync_calendar(full=True)`` (what
``manage.py recall_sync --full`` runs: refresh, sync every page, then reconcile the bots of every
upcoming meeting), and its peak from ``resource.getrusage`` afterwards, the kernel's peak counter
reset first so that nothing before the sync counts. The calendar's policy is "off", so the
reconcile evaluates every one of the 100,000 upcoming meetings without a Recall call.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from django_recall_calendar import calendars
from django_recall_calendar.models import Calendar, CalendarEvent, CalendarStatus

from .table import print_goal, print_table

EVENTS = 100_000
GOAL_MIB = 20
ROOT = Path(__file__).resolve().parents[1]


def resident_kib() -> int:
    """The current resident set, from ``/proc/self/status``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def reset_peak() -> bool:
    """Reset the kernel's peak resident set of this process (Linux >= 4.0); whether it could."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run(database: str) -> None:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.emulator_process", str(EVENTS)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        remote = json.loads(emulator.stdout.readline())
        settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "BASE_URL": remote["base_url"]}
        user = get_user_model().objects.create(username="owner", email=remote["email"])
        calendar = Calendar.objects.create(
            user=user,
            recall_id=remote["calendar_id"],
            platform="google_calendar",
            oauth_email=remote["email"],
            status=CalendarStatus.CONNECTED,
            recording_policy="off",
        )
        gc.collect()
        start, was_reset = resident_kib(), reset_peak()
        began = time.perf_counter()
        done = calendars.sync_calendar(calendar, full=True)
        seconds = time.perf_counter() - began
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    finally:
        assert emulator.stdin is not None
        emulator.stdin.close()
        emulator.wait()
    assert done.events is not None and done.events.created == EVENTS, done
    assert done.bots is not None and done.bots.unchanged == EVENTS, done.bots
    assert CalendarEvent.objects.count() == EVENTS
    growth = (peak - start) / 1024
    print_table(
        f"First sync of {EVENTS:,} events with the bot reconcile, one process ({database})",
        ["measure", "value"],
        [
            ["seconds (pages over HTTP from the emulator process)", seconds],
            ["resident set at the start, MiB", start / 1024],
            ["peak resident set during the sync, MiB", peak / 1024],
            ["growth, MiB", growth],
            [
                "peak counter reset before the sync",
                "yes" if was_reset else "no (peak may be older)",
            ],
        ],
    )
    print_goal(
        f"memory of a {EVENTS:,}-event first sync ({database})",
        f"peak resident set at most {GOAL_MIB} MiB over its start, bot reconcile included",
        growth <= GOAL_MIB,
        f"+{growth:.1f} MiB ({start / 1024:.0f} -> {peak / 1024:.0f} MiB)",
    )
