"""Convergence under an unruly Recall: whatever Recall does on the way, the end state is Recall's.

50 calendars with 50 meetings each (2,500 events), then rounds of random changes at Recall: moves,
new titles and links, cancellations, new meetings (some a copy of another calendar's meeting),
meetings handed to another calendar, disconnections and reconnections. Recall behaves as it does:
webhooks late, twice, out of order, its listings in no order, its rate limits enforced (on a clock
running ``TIME_SCALE`` times faster), and a fifth of all requests failing (throttled, 5xx, 507, a
request carried out then answered 500, answers stalled past the client's timeout, requests held
until their retry finds them in flight). The app processes every delivery as in production: the
view stores it and queues a task, a worker runs the due tasks (syncs, workspace sweeps, batches
of bot calls, retries), cron runs ``recall_webhooks --retry-failed``.

Once nothing is left to do, every row equals Recall's event, every meeting the policy wants has
exactly one bot, no other meeting has one, and every delivery Recall made was stored and
processed. PostgreSQL only (``.ci/run`` has a PostgreSQL pass): the page upserts and the
claims as production runs them, and a minute of work kept out of the default SQLite pass.
Seeded: the same changes, and the same faults drawn, on every run (event ids, and so the order
of Recall's pages, and which requests meet the rate limits still vary).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django_recall_calendar import conf, scheduling, tasks
from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    DeliveryStatus,
    RecordingPolicy,
    WebhookDelivery,
)
from django_recall_calendar.testing.delivery import UnrulyOptions
from tests import builders
from tests.test_sync import assert_mirrors

SEED = 14
TIME_SCALE = 10
PAGE_SIZE = 50

pytestmark = [
    pytest.mark.postgres(
        reason="converges as production runs, on PostgreSQL (a minute: not in the SQLite pass)"
    ),
    pytest.mark.django_db(transaction=True),
    pytest.mark.recall_emulator(
        unruly=UnrulyOptions(seed=SEED),
        rate_limits=True,
        time_scale=TIME_SCALE,
        page_size=PAGE_SIZE,
    ),
]

CALENDARS = 50
MEETINGS = 50
ROUNDS = 5
#: Calendars whose policy records nothing: their meetings must never get a bot.
NOT_RECORDING = 5
FAULT_RATE = 0.2
#: Faults drawn by kind, weighted: stalls and held requests each cost a client timeout.
FAULT_KINDS = (
    *("429",) * 4,
    *("500", "502", "503", "504", "507", "applied_500") * 3,
    "stall",
    "slow",
)
TIMEOUT = 0.2
#: How far ahead of the clock cron looks for refused bot calls: one refused without a Retry-After
#: waits a minute, which the test does not sit through; every meeting starts hours later, so
#: none is given up as missed.
BOT_RETRY_AHEAD = timedelta(minutes=2)
MAX_PASSES = 200


@pytest.fixture
def unruly_recall(recall_emulator, queued, settings):
    """The emulator failing a fifth of the requests; the app's waits on the emulator's clock."""
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "TIMEOUT": TIMEOUT,
        "RETRY_AFTER_CAP": 2.0,  # Recall's Retry-After (real seconds on the scaled clock) obeyed
        "WEBHOOK_RETRY_DELAYS": [
            delay / TIME_SCALE for delay in conf.DEFAULTS["WEBHOOK_RETRY_DELAYS"]
        ],
    }
    yield recall_emulator
    recall_emulator.clear_faults()


def test_an_unruly_recall_and_the_app_converge(unruly_recall, queued):
    emulator = unruly_recall
    rng = random.Random(SEED)
    started = time.monotonic()
    waited: Counter = Counter()
    emulator.fault_rate(FAULT_RATE, FAULT_KINDS, seed=SEED, retry_after=0, seconds=TIMEOUT * 2)
    calendar_ids = create_calendars(emulator, rng)
    settle(emulator, queued, waited)  # the first sweep: every calendar's meetings at once
    for _ in range(ROUNDS):
        change(emulator, rng, calendar_ids)
        settle(emulator, queued, waited)
    emulator.clear_faults()

    assert_mirrors(emulator)
    assert_bots_follow_the_policy(emulator)
    figures = assert_no_delivery_lost(emulator)
    requests = emulator.requests
    faults = Counter(r.fault for r in requests if r.fault and r.fault != "throttled")
    assert 0.15 < sum(faults.values()) / len(requests) < 0.25
    assert set(faults) == set(FAULT_KINDS)
    print(
        f"\nconvergence: {len(calendar_ids)} calendars, {len(emulator.events)} events, "
        f"{len(emulator.bots)} bots, {len(requests)} requests, faults {dict(faults)}, "
        f"429s seen {sum(r.status == 429 for r in requests)} "
        f"(throttled {sum(r.fault == 'throttled' for r in requests)}), {figures}, "
        f"waits for a retry {dict(waited)}, "
        f"{time.monotonic() - started:.1f} s"
    )


# -- Recall's side -------------------------------------------------------------------------------


def create_calendars(emulator, rng: random.Random) -> list[str]:
    """The calendars (the last few recording nothing) and their meetings, one in ten a copy of a
    meeting of the calendar before."""
    user = builders.user("convergence")
    ids: list[str] = []
    previous: list[dict] = []
    for index in range(CALENDARS):
        policy = RecordingPolicy.OFF if index >= CALENDARS - NOT_RECORDING else RecordingPolicy.ALL
        calendar = builders.recall_calendar(
            emulator, f"user{index}@acme.example", owner=user, recording_policy=policy
        )
        ids.append(str(calendar.recall_id))
        specs = [
            shared_meeting(rng.choice(previous))
            if previous and rng.random() < 0.1
            else new_meeting(rng)
            for _ in range(MEETINGS)
        ]
        previous = emulator.add_event_list(ids[-1], specs)
    return ids


def new_meeting(rng: random.Random) -> dict[str, Any]:
    """A meeting in the coming ten days, three hours away at the soonest."""
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(
        hours=rng.randrange(3, 240), minutes=rng.choice((0, 30))
    )
    return {
        "start_time": start,
        "end_time": start + timedelta(minutes=rng.choice((15, 30, 60))),
        "meeting_url": f"https://zoom.us/j/{rng.randrange(10**9, 10**10)}",
        "title": f"Meeting {rng.randrange(10**6)}",
    }


def shared_meeting(event: dict) -> dict[str, Any]:
    """The same meeting in another attendee's calendar: same link and time."""
    return {
        "start_time": event["start_time"],
        "end_time": event["end_time"],
        "meeting_url": event["meeting_url"],
    }


def change(emulator, rng: random.Random, calendar_ids: list[str]) -> None:
    """One round of changes at Recall, each announced by its own webhooks."""
    calendars = emulator.calendars
    connected = [c for c in calendar_ids if calendars[c]["status"] == "connected"]
    for calendar_id in calendar_ids:
        if calendars[calendar_id]["status"] == "disconnected":
            emulator.connect_calendar(calendar_id)
    live = [e for e in emulator.events.values() if not e["is_deleted"]]
    for event in live:
        roll = rng.random()
        if roll < 0.08:  # moved
            shift = timedelta(hours=rng.choice((-2, -1, 1, 3, 24, 48)))
            start = max(parse_datetime(event["start_time"]) + shift, soon(hours=3))
            end = start + (parse_datetime(event["end_time"]) - parse_datetime(event["start_time"]))
            emulator.update_event(event["id"], start_time=start, end_time=end)
        elif roll < 0.12:  # renamed
            emulator.update_event(event["id"], title=f"Renamed {rng.randrange(10**6)}")
        elif roll < 0.15:  # another link, or none
            link = rng.choice((None, f"https://meet.google.com/{rng.randrange(10**9)}"))
            emulator.update_event(event["id"], meeting_url=link)
        elif roll < 0.19:  # cancelled
            emulator.delete_event(event["id"])
        elif roll < 0.20:  # handed to another calendar
            emulator.move_event(event["id"], rng.choice(calendar_ids))
    for calendar_id in rng.sample(calendar_ids, 10):
        emulator.add_event_list(
            calendar_id,
            [shared_meeting(rng.choice(live)) if rng.random() < 0.2 else new_meeting(rng)]
            + [new_meeting(rng) for _ in range(rng.randrange(3))],
        )
    for calendar_id in rng.sample(connected, 3):
        emulator.disconnect_calendar(calendar_id, details={"error_code": "invalid_grant"})


def soon(hours: float) -> datetime:
    return timezone.now().replace(second=0, microsecond=0) + timedelta(hours=hours)


# -- the app's side ------------------------------------------------------------------------------


def run_due_tasks(backend) -> None:
    """Run every queued task that is due, as workers would, until none is."""
    while True:
        now = timezone.now()
        queued = list(backend.results)
        backend.results.clear()
        due = [r for r in queued if r.task.run_after is None or r.task.run_after <= now]
        backend.results.extend(r for r in queued if r not in due)
        if not due:
            return
        for result in due:
            result.task.call(*result.args, **result.kwargs)


def settle(emulator, backend, seen: Counter) -> None:
    """Deliver, process and retry until nothing is left to do: no webhook waiting at Recall, no
    delivery waiting here, no refused bot call waiting for its retry (counted in ``seen``)."""
    for _ in range(MAX_PASSES):
        emulator.settle(timeout=120)  # every webhook, with Svix's retries of refused ones
        run_due_tasks(backend)
        tasks.retry_due()  # cron: recall_webhooks --retry-failed
        seen.update(waiting_work())
        scheduling.retry_bot_calls(now=timezone.now() + BOT_RETRY_AHEAD)
        run_due_tasks(backend)
        if not len(emulator.outgoing) and not waiting_work():
            return
        time.sleep(0.05)
    raise AssertionError(f"still work to do after {MAX_PASSES} passes: {waiting_work()}")


def waiting_work() -> dict[str, int]:
    """Deliveries not done yet (a failed one with no retry left is lost: the test says so later)
    and refused bot calls waiting for their retry."""
    deliveries = WebhookDelivery.objects.exclude(
        status__in=[DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED]
    ).exclude(status=DeliveryStatus.FAILED, next_attempt_at=None)
    bot_retries = CalendarEvent.objects.exclude(bot_retry_at=None)
    return {
        name: count
        for name, count in (
            ("deliveries", deliveries.count()),
            ("bot retries", bot_retries.count()),
        )
        if count
    }


# -- the checks ----------------------------------------------------------------------------------


def wanted(event: dict, calendars: dict, recording: set[str]) -> bool:
    """Whether the policy wants a bot for Recall's event: a meeting to come, with a link, of a
    connected calendar that records everything."""
    return (
        not event["is_deleted"]
        and bool(event["meeting_url"])
        and calendars[event["calendar_id"]]["status"] == "connected"
        and event["calendar_id"] in recording
        and parse_datetime(event["start_time"]) > timezone.now()
    )


def assert_bots_follow_the_policy(emulator) -> None:
    """Every wanted meeting has exactly one bot at Recall, for its link and time, shared by all
    its copies; no other event has a bot, and no bot is left without a wanted meeting."""
    events, calendars, bots = emulator.events, emulator.calendars, emulator.bots
    recording = {
        str(recall_id)
        for recall_id in Calendar.objects.filter(recording_policy=RecordingPolicy.ALL).values_list(
            "recall_id", flat=True
        )
    }
    meetings: dict[tuple[str, str], set[str]] = {}
    for event in events.values():
        if not wanted(event, calendars, recording):
            assert event["bots"] == [], event
            continue
        [bot] = event["bots"]
        assert (bot["start_time"], bot["meeting_url"]) == (
            event["start_time"],
            event["meeting_url"],
        )
        meetings.setdefault((event["meeting_url"], event["start_time"]), set()).add(bot["bot_id"])
    assert all(len(ids) == 1 for ids in meetings.values())
    assert len(bots) == len(meetings)
    for bot in bots.values():
        assert bot["event_ids"] and all(
            wanted(events[event_id], calendars, recording) for event_id in bot["event_ids"]
        )


def assert_no_delivery_lost(emulator) -> dict[str, int]:
    """Every message Recall delivered is stored once and processed; a refused attempt was
    retried until accepted. Returns the delivery figures."""
    attempts = emulator.deliveries
    accepted = {d.id for d in attempts if d.ok}
    assert {d.id for d in emulator.failed_deliveries} <= accepted
    stored = dict(WebhookDelivery.objects.values_list("message_id", "status"))
    assert set(stored) == accepted
    assert set(stored.values()) == {DeliveryStatus.PROCESSED}
    retried = WebhookDelivery.objects.filter(attempts__gt=1).count()
    listings = emulator.requests_for("GET", "/api/v2/calendar-events/")
    sweeps = [r for r in listings if "calendar_id" not in r.query and r.status == 200]
    return {
        "deliveries": len(accepted),
        "duplicates": len(attempts) - len(accepted),
        "refused": len(emulator.failed_deliveries),
        "retried": retried,
        "sweeps": sum(1 for r in sweeps if "cursor" not in r.query),
        "sweep pages": len(sweeps),
    }
