"""Where the burst benchmark's time goes: when the webhooks, the deliveries, the listings and the
bot calls came, the bot calls per 10 s, and how busy the RQ workers were.

Against a sliding minute the burst ends about a minute after its first bot call (the calls past
the budget's first minute follow the first ones by a minute), so the first bot call's time and the
calls sent per second from then on are what decide the ratio to the minimum.
"""

from __future__ import annotations

import redis
from django.db.models import Max, Min
from rq.job import Job
from rq.registry import FinishedJobRegistry

from django_recall_calendar import budget
from django_recall_calendar.models import WebhookDelivery

BIN = 10  # seconds per bin of the bot calls' histogram


def answered_calls(requests) -> dict[str, list[float]]:
    """The times (``request.at``) of the calls Recall answered, not throttled, per endpoint class
    of the app's budget: what the report counts and the timeline places."""
    calls: dict[str, list[float]] = {}
    for request in requests:
        if request.status != 429:
            name = budget.endpoint_class(request.method, request.path)
            calls.setdefault(name, []).append(request.at)
    return calls


def timeline_rows(running, started: float, first_minute: int) -> list[list]:
    """(what, first s, last s) rows, seconds after ``started`` (``time.time()``);
    ``first_minute``: the bot calls the app's budget allows in a minute."""
    answered = sorted(
        d.delivered_at for d in running.deliveries if d.event == "calendar.sync_events"
    )
    stored = WebhookDelivery.objects.aggregate(first=Min("received_at"), last=Max("received_at"))
    calls = answered_calls(running.requests)
    rows = []
    if answered:
        rows.append(["webhooks answered by the app", answered[0], answered[-1]])
    if stored["first"]:
        first, last = stored["first"].timestamp(), stored["last"].timestamp()
        rows.append(["deliveries stored", first, last])
    for name in (budget.EVENT_LISTINGS, budget.BOT_SCHEDULING):
        times = sorted(calls.get(name, []))
        if times:
            rows.append([f"{name} calls", times[0], times[-1]])
    bots = sorted(calls.get(budget.BOT_SCHEDULING, []))
    if len(bots) > first_minute:
        rows.append(
            [
                f"bot calls 1-{first_minute} (the budget's first minute)",
                bots[0],
                bots[first_minute - 1],
            ]
        )
    return [[what, first - started, last - started] for what, first, last in rows]


def bot_calls_per_bin(running, started: float) -> str:
    """Bot calls answered per :data:`BIN` s after ``started``, e.g. ``0-10 s: 0, 10-20 s: 312``."""
    bins: dict[int, int] = {}
    for at in answered_calls(running.requests).get(budget.BOT_SCHEDULING, []):
        index = int((at - started) // BIN)
        bins[index] = bins.get(index, 0) + 1
    return ", ".join(f"{i * BIN}-{(i + 1) * BIN} s: {bins.get(i, 0)}" for i in range(max(bins) + 1))


def worker_busy(url: str, queues: list[str], started: float, ended: float) -> str:
    """Each RQ worker's share of ``started``..``ended`` spent running jobs (finished ones)."""
    connection = redis.Redis.from_url(url)
    busy: dict[str, float] = {}
    jobs = 0
    for queue in queues:
        ids = FinishedJobRegistry(queue, connection=connection).get_job_ids()
        for job in Job.fetch_many(ids, connection=connection):
            if job is None or not job.started_at or not job.ended_at:
                continue
            jobs += 1
            seconds = (job.ended_at - job.started_at).total_seconds()
            busy[job.worker_name or "?"] = busy.get(job.worker_name or "?", 0.0) + seconds
    span = ended - started
    shares = ", ".join(f"{100 * seconds / span:.0f}%" for seconds in sorted(busy.values()))
    return f"{jobs} jobs; busy {shares} of {span:.0f} s"
