"""Bot outcomes: Recall's signed ``bot.*`` webhooks processed once, for every meeting a bot serves,
forward only whatever order they arrive in, with a sentence a person reads and the host's signals.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from django_recall_calendar import signals
from django_recall_calendar.bot_status import describe
from django_recall_calendar.client import RecallClient
from django_recall_calendar.models import (
    BotOutcome,
    BotResult,
    BotStatus,
    CalendarEvent,
    DeliveryStatus,
    RecordingPolicy,
    WebhookDelivery,
)
from tests import builders

pytestmark = [pytest.mark.django_db, pytest.mark.recall_emulator(unruly=False)]

ZOOM = "https://acme.zoom.us/j/85012345678"
RECORDED_PATH = [
    BotStatus.JOINING_CALL,
    BotStatus.IN_WAITING_ROOM,
    BotStatus.IN_CALL_NOT_RECORDING,
    BotStatus.RECORDING_PERMISSION_ALLOWED,
    BotStatus.IN_CALL_RECORDING,
    BotStatus.CALL_ENDED,
    BotStatus.DONE,
]


@pytest.fixture
def heard():
    """Every bot signal the host would receive, as (signal name, kwargs)."""
    received: list[tuple[str, dict]] = []
    names = ("bot_status_changed", "bot_done", "bot_failed")
    handlers = {}
    for name in names:

        def handler(sender, name=name, **kwargs):
            received.append((name, kwargs))

        handlers[name] = handler
        getattr(signals, name).connect(handler)
    yield received
    for name in names:
        getattr(signals, name).disconnect(handlers[name])


@pytest.fixture
def shared_meeting(recall_emulator):
    """One meeting in two users' calendars: managed scheduling sends one bot for both copies."""
    start = timezone.now() + timedelta(minutes=5)
    copies = []
    for email in ("ada@acme.example", "bob@acme.example"):
        calendar = builders.recall_calendar(
            recall_emulator, email, recording_policy=RecordingPolicy.ALL
        )
        spec = {"title": "Quarterly review", "start_time": start, "meeting_url": ZOOM}
        (copy,) = builders.synced_events(recall_emulator, calendar, spec)
        copies.append(copy)
    bot_ids = {builders.bot_id_of(copy) for copy in copies}
    assert len(bot_ids) == 1, "the two copies should share one bot"
    return copies, bot_ids.pop()


def walk(emulator, bot_id: str, statuses, sub_codes=None, start=None):
    """Send ``statuses`` one minute apart, as a bot moving through a meeting would."""
    start = start or timezone.now()
    sub_codes = sub_codes or {}
    return [
        builders.bot_webhook(emulator, bot_id, s, sub_codes.get(s), at=start + timedelta(minutes=i))
        for i, s in enumerate(statuses)
    ]


def outcome_of(event: CalendarEvent) -> BotOutcome:
    event.refresh_from_db()
    assert event.bot_outcome is not None
    return event.bot_outcome


@pytest.mark.recall_emulator(unruly=False)
def test_a_recorded_meeting_shows_on_every_copy_and_tells_the_host_once(
    recall_emulator, shared_meeting, heard
):
    copies, bot_id = shared_meeting
    recall_emulator.move_bot(bot_id, BotStatus.DONE, waiting_room=True)

    bot_deliveries = [d for d in recall_emulator.deliveries if d.event.startswith("bot.")]
    assert [d.event for d in bot_deliveries] == [f"bot.{status}" for status in RECORDED_PATH]
    assert all(d.status == 200 for d in bot_deliveries)
    assert set(
        WebhookDelivery.objects.filter(event_type__startswith="bot.").values_list(
            "status", flat=True
        )
    ) == {DeliveryStatus.PROCESSED}
    outcome = outcome_of(copies[0])
    assert outcome == outcome_of(copies[1])  # one row for the bot, every meeting points to it
    assert outcome.status == BotStatus.DONE
    assert outcome.result == BotResult.RECORDED
    assert [entry["status"] for entry in outcome.history] == RECORDED_PATH
    changes = [kwargs["status"] for name, kwargs in heard if name == "bot_status_changed"]
    assert changes == RECORDED_PATH
    done = [kwargs for name, kwargs in heard if name == "bot_done"]
    assert len(done) == 1 and done[0]["recorded"] is True
    assert {event.pk for event in done[0]["events"]} == {copy.pk for copy in copies}
    assert not [name for name, _ in heard if name == "bot_failed"]


def emulated(*moves):
    """Drive the bot with the emulator's lifecycle control: ``(status, options)`` per move."""

    def drive(emulator, bot_id):
        for status, options in moves:
            emulator.move_bot(bot_id, status, **options)

    return drive


def signed(statuses, sub_codes):
    """Drive the bot with signed deliveries of our own, for paths the control does not walk
    (a bot sent away from the waiting room never reaches the call)."""

    def drive(emulator, bot_id):
        walk(emulator, bot_id, statuses, sub_codes)

    return drive


@pytest.mark.recall_emulator(unruly=False)
@pytest.mark.parametrize(
    ("drive", "reason"),
    [
        (
            emulated(("joining_call", {}), ("fatal", {"sub_code": "meeting_not_found"})),
            "Failed to record: the meeting was not found",
        ),
        (emulated(("fatal", {})), "Failed to record: the meeting link is not valid"),
        (
            signed(
                [
                    BotStatus.JOINING_CALL,
                    BotStatus.IN_WAITING_ROOM,
                    BotStatus.CALL_ENDED,
                    BotStatus.DONE,
                ],
                {BotStatus.CALL_ENDED: "timeout_exceeded_waiting_room"},
            ),
            "Failed to record: nobody let the bot in from the waiting room in time",
        ),
        (
            emulated(("recording_permission_denied", {}), ("done", {})),
            "Failed to record: the host refused the recording",
        ),
        (
            emulated(
                ("in_call_not_recording", {}),
                ("fatal", {"sub_code": "some_code_recall_adds_later"}),
            ),
            "Failed to record: some code recall adds later",
        ),
    ],
    ids=["meeting-not-found", "bad-link", "waiting-room-timeout", "permission-denied", "unknown"],
)
def test_a_failed_bot_says_why_in_words_and_tells_the_host_once(
    recall_emulator, shared_meeting, heard, drive, reason
):
    copies, bot_id = shared_meeting
    drive(recall_emulator, bot_id)

    outcome = outcome_of(copies[1])
    assert outcome.result == BotResult.FAILED
    assert outcome.recorded is False
    assert describe(outcome) == reason
    failed = [kwargs for name, kwargs in heard if name == "bot_failed"]
    assert len(failed) == 1
    assert failed[0]["reason"] == reason
    assert len(failed[0]["events"]) == 2


def test_an_unruly_recall_delivering_late_shuffled_and_twice_ends_where_an_orderly_one_does(
    recall_emulator, shared_meeting, heard
):
    """The emulator's default: webhooks held, reordered, sometimes sent twice, then settled."""
    copies, bot_id = shared_meeting
    recall_emulator.move_bot(bot_id, BotStatus.DONE, waiting_room=True)
    recall_emulator.settle()

    outcome = outcome_of(copies[0])
    assert outcome == outcome_of(copies[1])
    assert (outcome.status, outcome.result) == (BotStatus.DONE, BotResult.RECORDED)
    assert sorted(entry["status"] for entry in outcome.history) == sorted(RECORDED_PATH)
    assert len([name for name, _ in heard if name == "bot_done"]) == 1
    assert not [name for name, _ in heard if name == "bot_failed"]


@pytest.mark.recall_emulator(unruly=False)
def test_late_and_out_of_order_deliveries_never_move_a_bot_backwards(
    recall_emulator, shared_meeting, heard
):
    copies, bot_id = shared_meeting
    target, recall_emulator.webhook_url = recall_emulator.webhook_url, None
    recall_emulator.move_bot(bot_id, BotStatus.DONE, waiting_room=True)  # recorded, not sent
    recall_emulator.webhook_url = target
    held = {d.event: d for d in recall_emulator.deliveries if d.event.startswith("bot.")}
    # Svix promises no order: "done" first, the rest late and shuffled, one of them twice.
    order = ["done", "joining_call", "in_call_recording", "call_ended", "in_waiting_room"]
    sent = [recall_emulator.redeliver(held[f"bot.{status}"]) for status in order]
    recall_emulator.redeliver(held["bot.in_call_recording"])

    assert all(delivery.status == 200 for delivery in sent)
    outcome = outcome_of(copies[0])
    assert outcome.status == BotStatus.DONE
    assert outcome.status_at.isoformat() == held["bot.done"].payload["data"]["data"]["updated_at"]
    # Recall's own record of the bot, read when it ended, already said it recorded.
    assert outcome.result == BotResult.RECORDED
    assert [entry["status"] for entry in outcome.history] == RECORDED_PATH
    assert WebhookDelivery.objects.filter(message_id=sent[2].id).count() == 1
    # The late ones told the host nothing new: one change (to done), one "done", no failure.
    assert [kwargs["status"] for name, kwargs in heard if name == "bot_status_changed"] == [
        BotStatus.DONE
    ]
    assert len([name for name, _ in heard if name == "bot_done"]) == 1
    assert not [name for name, _ in heard if name == "bot_failed"]


def test_deliveries_alone_in_any_order_keep_the_bot_moving_forward(recall_emulator, shared_meeting):
    """Without Recall's record (deliveries of our own, the emulator's bot never moved), rank and
    time still decide: a late "joining" never replaces "in the call"."""
    copies, bot_id = shared_meeting
    start = timezone.now()
    for minutes, status in [(3, "in_call_recording"), (0, "joining_call"), (1, "in_waiting_room")]:
        builders.bot_webhook(recall_emulator, bot_id, status, at=start + timedelta(minutes=minutes))

    outcome = outcome_of(copies[0])
    assert outcome.status == BotStatus.IN_CALL_RECORDING
    assert outcome.first_status_at == start
    assert outcome.result == BotResult.RECORDED
    assert [entry["status"] for entry in outcome.history] == [
        "joining_call",
        "in_waiting_room",
        "in_call_recording",
    ]


def test_a_failure_reason_is_the_same_whatever_the_order(recall_emulator, shared_meeting):
    copies, bot_id = shared_meeting
    start = timezone.now()
    builders.bot_webhook(
        recall_emulator,
        bot_id,
        BotStatus.CALL_ENDED,
        "meeting_ended_by_host",
        at=start + timedelta(minutes=5),
    )
    builders.bot_webhook(
        recall_emulator,
        bot_id,
        BotStatus.RECORDING_PERMISSION_DENIED,
        "zoom_local_recording_disabled",
        at=start + timedelta(minutes=2),
    )
    assert outcome_of(copies[0]).result == BotResult.IN_PROGRESS  # not known until it ends
    builders.bot_webhook(recall_emulator, bot_id, BotStatus.DONE, at=start + timedelta(minutes=6))
    outcome = outcome_of(copies[0])
    assert outcome.status == BotStatus.DONE
    assert outcome.failure_status == BotStatus.RECORDING_PERMISSION_DENIED
    assert describe(outcome) == (
        "Failed to record: recording is turned off in the host's Zoom settings"
    )


@pytest.mark.recall_emulator(unruly=False)
def test_a_bot_reporting_before_the_sync_lists_it_is_joined_to_its_meeting_later(
    recall_emulator,
):
    calendar = builders.recall_calendar(recall_emulator, "ada@acme.example")
    (meeting,) = builders.synced_events(
        recall_emulator, calendar, {"title": "Sync", "meeting_url": ZOOM}
    )
    # The bot is added at Recall behind the app's back; its webhooks come before any sync.
    answer = RecallClient.from_settings().schedule_bot(
        str(meeting.recall_id), deduplication_key="elsewhere", bot_config={}
    )
    bot_id = answer["bots"][0]["bot_id"]
    builders.bot_webhook(recall_emulator, bot_id, BotStatus.JOINING_CALL)
    meeting.refresh_from_db()
    assert meeting.bot_outcome is None
    assert BotOutcome.objects.get(recall_bot_id=bot_id).status == BotStatus.JOINING_CALL

    recall_emulator.update_event(str(meeting.recall_id), title="Sync (moved)")  # a sync follows

    assert outcome_of(meeting).recall_bot_id.hex == bot_id.replace("-", "")


def test_self_managed_bots_reach_their_meetings_through_their_rows(
    recall_emulator, settings, heard
):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "SCHEDULING_MODE": "self_managed"}
    calendar = builders.recall_calendar(
        recall_emulator, "ada@acme.example", recording_policy=RecordingPolicy.ALL
    )
    (meeting,) = builders.synced_events(
        recall_emulator, calendar, {"title": "Sync", "meeting_url": ZOOM}
    )
    bot_id = str(meeting.self_managed_bots.get().recall_bot_id)

    walk(
        recall_emulator, bot_id, [BotStatus.JOINING_CALL, BotStatus.FATAL], {"fatal": "bot_errored"}
    )

    assert outcome_of(meeting).result == BotResult.FAILED
    assert [kwargs["events"] for name, kwargs in heard if name == "bot_failed"] == [[meeting]]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"bot": {"id": "not-a-uuid"}, "data": {"updated_at": "2026-01-01T00:00:00Z"}}, "no bot"),
        ({"bot": "x", "data": {}}, "no bot"),
        ({"bot": {"id": "0b3c5a0e-1111-4222-8333-444455556666"}, "data": {}}, "no time"),
        (
            {
                "bot": {"id": "0b3c5a0e-1111-4222-8333-444455556666"},
                "data": {"updated_at": "yesterday"},
            },
            "no time",
        ),
    ],
)
def test_a_signed_but_malformed_bot_delivery_is_kept_ignored_with_its_reason(
    recall_emulator, data, reason
):
    delivery = recall_emulator.send_webhook("bot.done", data)

    assert delivery.status == 200  # acknowledged: Recall retrying it would not mend it
    stored = WebhookDelivery.objects.get(message_id=delivery.id)
    assert stored.status == DeliveryStatus.IGNORED
    assert reason in stored.last_error
    assert not BotOutcome.objects.exists()


def test_an_oversized_sub_code_is_cut_and_the_bot_log_family_stays_ignored(
    recall_emulator, shared_meeting
):
    copies, bot_id = shared_meeting
    builders.bot_webhook(recall_emulator, bot_id, BotStatus.FATAL, "x" * 5000)
    log = recall_emulator.send_webhook("bot.log", {"bot_id": bot_id, "log": {"message": "hi"}})

    assert len(outcome_of(copies[0]).failure_sub_code) == 100
    assert WebhookDelivery.objects.get(message_id=log.id).status == DeliveryStatus.IGNORED


def test_each_user_reads_the_outcome_of_their_copy_in_the_api(recall_emulator, shared_meeting):
    from rest_framework.test import APIClient

    copies, bot_id = shared_meeting
    start = timezone.now()
    walk(recall_emulator, bot_id, RECORDED_PATH, start=start)
    for copy in copies:
        api = APIClient()
        api.force_authenticate(copy.calendar.user)
        (row,) = api.get("/recall/api/events/").json()["results"]
        assert row["id"] == copy.pk
        assert row["bot_status"] == "done"
        assert row["bot_result"] == "recorded"
        assert row["bot_status_description"] == "Recorded, the recording is ready"
        assert row["bot_status_at"].startswith(
            (start + timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M")
        )


@pytest.mark.recall_emulator(unruly=False)
def test_a_bot_report_costs_the_same_queries_for_a_bot_of_2_or_40_meetings_among_many(
    recall_emulator, django_assert_max_num_queries
):
    """Finding a bot's meetings narrows by start time in SQL, then one UPDATE points them all."""
    calendar = builders.calendar()
    start = timezone.now() + timedelta(minutes=5)

    def bot_with(count: int) -> str:
        bot_id = str(uuid.uuid4())
        entry = {"bot_id": bot_id, "start_time": start.isoformat(), "deduplication_key": "k"}
        builders.events(calendar, count, start=start, step=timedelta(0), bots=[entry])
        return bot_id

    builders.events(calendar, 300, start=start - timedelta(days=30))  # other meetings
    small, large = bot_with(2), bot_with(40)

    def cost(bot_id: str) -> int:
        with django_assert_max_num_queries(40) as captured:
            builders.bot_webhook(recall_emulator, bot_id, BotStatus.JOINING_CALL, at=start)
        return len(captured)

    assert cost(small) == cost(large)
    assert CalendarEvent.objects.filter(bot_outcome__recall_bot_id=large).count() == 40
