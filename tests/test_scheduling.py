"""Recall-managed bot scheduling against the emulator: dedup, moves, cancellations, refusals."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from django_recall_calendar import signals
from django_recall_calendar.calendars import sync_calendar, sync_changes
from django_recall_calendar.exceptions import RecallError
from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    CalendarStatus,
    Platform,
    RecordingPolicy,
    RecordOverride,
)
from django_recall_calendar.scheduling import (
    SchedulingRefused,
    bot_state,
    reconcile_calendar,
    reconcile_events,
    schedule_bot,
    set_record_override,
    unschedule_bot,
)
from tests import builders

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]

TEAMS = (
    "https://teams.microsoft.com/l/meetup-join/"
    "19%3ameeting_NjQ4ZDU3YjEtMmE2Zi00YzM0LWI4MjctZDA3NWQ0NjE2ZDQx%40thread.v2/0"
)


def teams_link(object_id: str) -> str:
    """The same Teams meeting as one invitee's calendar shows it (their object id in context)."""
    return f"{TEAMS}?context=%7b%22Tid%22%3a%22tenant-1%22%2c%22Oid%22%3a%22{object_id}%22%7d"


@pytest.fixture(autouse=True)
def record_all(settings):
    """Calendars here record every meeting with a link unless a test says otherwise."""
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "DEFAULT_RECORDING_POLICY": "all"}


def local(remote_event: dict) -> CalendarEvent:
    return CalendarEvent.objects.get(recall_id=remote_event["id"])


def bot_calls(recall_emulator) -> list:
    return recall_emulator.requests_for(None, "/bot/")


def in_hours(hours: float):
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0)


# --- deduplication across users -------------------------------------------------------------


def _shared_meeting(recall_emulator, settings, scheme: str) -> list[Calendar]:
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "DEDUPLICATION": scheme}
    alice = builders.recall_calendar(
        recall_emulator, "alice@acme.example", Platform.MICROSOFT_OUTLOOK
    )
    bob = builders.recall_calendar(recall_emulator, "bob@acme.example", Platform.MICROSOFT_OUTLOOK)
    start = in_hours(24)
    for calendar, oid in ((alice, "oid-alice"), (bob, "oid-bob")):
        recall_emulator.add_event(
            str(calendar.recall_id),
            start_time=start,
            meeting_url=teams_link(oid),
            title="Quarterly review",
            attendees=["alice@acme.example", "bob@acme.example"],
        )
    for calendar in (alice, bob):
        sync_changes(calendar)
    return [alice, bob]


def test_two_users_of_one_meeting_share_one_bot_under_meeting(recall_emulator, settings):
    _shared_meeting(recall_emulator, settings, "meeting")
    assert len(recall_emulator.bots) == 1
    (bot,) = recall_emulator.bots.values()
    assert len(bot["event_ids"]) == 2
    events = CalendarEvent.objects.all()
    assert [bot_state(event)[0] for event in events] == ["scheduled", "scheduled"]
    assert {event.bots[0]["bot_id"] for event in events} == {bot["id"]}


def test_two_users_of_one_meeting_get_two_bots_under_event(recall_emulator, settings):
    _shared_meeting(recall_emulator, settings, "event")
    assert len(recall_emulator.bots) == 2


def test_domain_scheme_shares_within_a_company_only(recall_emulator, settings):
    _shared_meeting(recall_emulator, settings, "domain")
    assert len(recall_emulator.bots) == 1
    carol = builders.recall_calendar(recall_emulator, "carol@other.example")
    recall_emulator.add_event(
        str(carol.recall_id),
        start_time=CalendarEvent.objects.first().start_time,
        meeting_url=teams_link("oid-carol"),
    )
    sync_changes(carol)
    assert len(recall_emulator.bots) == 2


# --- moves, cancellations, unchanged re-syncs -------------------------------------------------


def test_moved_meeting_moves_its_bot(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    remote = recall_emulator.add_event(str(calendar.recall_id), start_time=in_hours(24))
    sync_changes(calendar)
    (old_bot,) = recall_emulator.bots.values()

    new_start = in_hours(26)
    recall_emulator.update_event(
        remote["id"], start_time=new_start, end_time=new_start + timedelta(hours=1)
    )
    sync_changes(calendar)

    (bot,) = recall_emulator.bots.values()  # the old key's bot is gone, one bot remains
    assert bot["join_at"].startswith(new_start.strftime("%Y-%m-%dT%H:%M:%S"))
    assert bot["id"] != old_bot["id"]
    event = local(remote)
    assert bot_state(event)[0] == "scheduled"
    assert [b["start_time"][:19] for b in event.bots] == [new_start.strftime("%Y-%m-%dT%H:%M:%S")]


def test_changed_meeting_link_reschedules(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    remote = recall_emulator.add_event(str(calendar.recall_id), meeting_url="https://zoom.us/j/111")
    sync_changes(calendar)
    recall_emulator.update_event(remote["id"], meeting_url="https://meet.google.com/abc-defg-hij")
    sync_changes(calendar)
    (bot,) = recall_emulator.bots.values()
    assert bot["meeting_url"] == "https://meet.google.com/abc-defg-hij"


def test_cancelled_meeting_loses_its_bot(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    remote = recall_emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    assert len(recall_emulator.bots) == 1
    recall_emulator.delete_event(remote["id"])
    sync_changes(calendar)
    assert recall_emulator.bots == {}
    assert bot_state(local(remote)) == ("not_possible", "deleted")


def test_cancelled_outlook_meeting_still_listed_is_unscheduled(recall_emulator):
    """Outlook keeps a cancelled occurrence (isCancelled) without deleting it: we remove the bot."""
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", Platform.MICROSOFT_OUTLOOK
    )
    remote = recall_emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    assert len(recall_emulator.bots) == 1
    raw = {**recall_emulator.events[remote["id"]]["raw"], "isCancelled": True}
    recall_emulator.update_event(remote["id"], raw=raw)
    sync_changes(calendar)
    assert recall_emulator.bots == {}
    assert len(recall_emulator.requests_for("DELETE", "/bot/")) == 1
    assert bot_state(local(remote)) == ("not_possible", "cancelled")


def test_unchanged_resync_and_reconcile_make_no_bot_calls(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    remotes = [
        recall_emulator.add_event(str(calendar.recall_id), start_time=in_hours(24 + i))
        for i in range(5)
    ]
    sync_changes(calendar)
    assert len(bot_calls(recall_emulator)) == 5

    recall_emulator.update_event(remotes[2]["id"], title="Renamed, same time and link")
    assert sync_changes(calendar).events.updated == 1
    sync_calendar(calendar, full=True)
    assert reconcile_calendar(calendar).unchanged == 5
    assert len(bot_calls(recall_emulator)) == 5


def test_a_change_during_the_meeting_does_not_send_a_second_bot(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    remote = recall_emulator.add_event(
        str(calendar.recall_id), start_time=in_hours(-0.1), end_time=in_hours(0.5)
    )
    sync_changes(calendar)
    assert len(recall_emulator.requests_for("POST", "/bot/")) == 1
    recall_emulator.update_event(remote["id"], title="Notes added during the call")
    assert sync_changes(calendar).events.updated == 1
    assert len(recall_emulator.requests_for("POST", "/bot/")) == 1
    assert bot_state(local(remote))[0] == "scheduled"


def test_policy_change_reconciles(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    recall_emulator.add_event(str(calendar.recall_id), title="Mine")
    recall_emulator.add_event(
        str(calendar.recall_id), title="Theirs", organizer="boss@acme.example"
    )
    sync_changes(calendar)
    assert recall_emulator.bots == {}

    calendar.recording_policy = RecordingPolicy.ALL
    calendar.save()
    assert reconcile_calendar(calendar).scheduled == 2
    assert len(recall_emulator.bots) == 2

    calendar.recording_policy = RecordingPolicy.ORGANIZER
    calendar.save()
    result = reconcile_calendar(calendar)
    assert (result.scheduled, result.unscheduled, result.unchanged) == (0, 1, 1)
    (bot,) = recall_emulator.bots.values()
    assert CalendarEvent.objects.get(recall_id=bot["event_ids"][0]).title == "Mine"


# --- policies on a mixed set of Google and Microsoft events ----------------------------------

OWN_DOMAIN = "acme.example"


def _mixed_calendars(recall_emulator) -> list[Calendar]:
    google = builders.recall_calendar(
        recall_emulator, "alice@acme.example", Platform.GOOGLE_CALENDAR
    )
    outlook = builders.recall_calendar(
        recall_emulator, "alice@acme-corp.example", Platform.MICROSOFT_OUTLOOK
    )
    for calendar in (google, outlook):
        me = calendar.email
        cid = str(calendar.recall_id)
        recall_emulator.add_event_list(
            cid,
            [
                {"title": "organized", "attendees": [me, f"bob@{me.split('@')[1]}"]},
                {
                    "title": "external-accepted",
                    "organizer": "eve@vendor.example",
                    "attendees": [{"email": me, "response": "accepted"}, "eve@vendor.example"],
                },
                {
                    "title": "internal-declined",
                    "organizer": f"boss@{me.split('@')[1]}",
                    "attendees": [
                        {"email": me, "response": "declined"},
                        f"boss@{me.split('@')[1]}",
                    ],
                },
                {
                    "title": "internal-tentative",
                    "organizer": f"boss@{me.split('@')[1]}",
                    "attendees": [
                        {"email": me, "response": "tentative"},
                        f"boss@{me.split('@')[1]}",
                    ],
                },
                {"title": "no-link", "meeting_url": None},
                {
                    "title": "standup",
                    "series_id": "standup-series",
                    "organizer": f"boss@{me.split('@')[1]}",
                },
            ],
            spread=True,
        )
        sync_changes(calendar)
    return [google, outlook]


def _recorded_titles(recall_emulator) -> dict[str, set[str]]:
    by_calendar: dict[str, set[str]] = {}
    for event in CalendarEvent.objects.select_related("calendar"):
        if recall_emulator.events[str(event.recall_id)]["bots"]:
            by_calendar.setdefault(event.calendar.platform, set()).add(event.title)
    return by_calendar


POLICY_EXPECTATIONS = {
    RecordingPolicy.OFF: set(),
    RecordingPolicy.ALL: {"organized", "external-accepted", "internal-tentative", "standup"},
    RecordingPolicy.ORGANIZER: {"organized"},
    RecordingPolicy.EXTERNAL: {"external-accepted"},
    RecordingPolicy.ACCEPTED: {"organized", "external-accepted"},
}


@pytest.mark.parametrize("policy", list(POLICY_EXPECTATIONS))
def test_each_policy_on_google_and_microsoft_events(recall_emulator, policy):
    calendars = _mixed_calendars(recall_emulator)
    Calendar.objects.update(recording_policy=policy)
    for calendar in calendars:
        calendar.refresh_from_db()
        reconcile_calendar(calendar)
    expected = POLICY_EXPECTATIONS[policy]
    recorded = _recorded_titles(recall_emulator)
    assert recorded.get(Platform.GOOGLE_CALENDAR, set()) == expected
    assert recorded.get(Platform.MICROSOFT_OUTLOOK, set()) == expected


def test_overrides_and_series_override_on_mixed_events(recall_emulator):
    calendars = _mixed_calendars(recall_emulator)
    CalendarEvent.objects.filter(title="internal-tentative").update(
        record_override=RecordOverride.ALWAYS
    )
    CalendarEvent.objects.filter(title="organized").update(record_override=RecordOverride.NEVER)
    CalendarEvent.objects.filter(title="no-link").update(record_override=RecordOverride.ALWAYS)
    for calendar in calendars:
        calendar.recording_policy = RecordingPolicy.ORGANIZER
        calendar.series_overrides = {"standup-series": "always"}
        calendar.save()
        reconcile_calendar(calendar)
    expected = {"internal-tentative", "standup"}
    assert _recorded_titles(recall_emulator) == {
        Platform.GOOGLE_CALENDAR: expected,
        Platform.MICROSOFT_OUTLOOK: expected,
    }


def test_set_record_override_always_never_and_back_to_the_policy(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    recall_emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    event = CalendarEvent.objects.get()

    set_record_override(event, RecordOverride.ALWAYS, {"bot_name": "Notes"})
    (bot,) = recall_emulator.bots.values()
    assert bot["bot_config"]["bot_name"] == "Notes"
    set_record_override(event, RecordOverride.NEVER)
    assert recall_emulator.bots == {}
    assert CalendarEvent.objects.get().record_override == RecordOverride.NEVER

    Calendar.objects.update(recording_policy=RecordingPolicy.ALL)
    set_record_override(CalendarEvent.objects.get(), RecordOverride.DEFAULT)
    assert CalendarEvent.objects.get().record_override == RecordOverride.DEFAULT
    assert len(recall_emulator.bots) == 1  # the policy applied at once: "all" sends a bot back


def test_set_record_override_default_reports_a_failed_reconcile_and_keeps_no_half_choice(
    recall_emulator,
):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    recall_emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    set_record_override(CalendarEvent.objects.get(), RecordOverride.NEVER)
    recall_emulator.inject_fault("500", count=20, path="/api/v2/calendar-events/")

    with pytest.raises(RecallError):  # as for "always" and "never": the error keeps its type
        set_record_override(CalendarEvent.objects.get(), RecordOverride.DEFAULT)
    # The choice and its Recall call are one unit: Recall failing leaves the old choice.
    assert CalendarEvent.objects.get().record_override == RecordOverride.NEVER
    assert recall_emulator.bots == {}


def test_skip_declined_off_records_declined_meetings(recall_emulator):
    calendars = _mixed_calendars(recall_emulator)
    for calendar in calendars:
        calendar.skip_declined = False
        calendar.min_attendees = 2
        calendar.save()
        reconcile_calendar(calendar)
    # The stand-up has two people: its organizer and the calendar's owner.
    expected = {
        "organized",
        "external-accepted",
        "internal-declined",
        "internal-tentative",
        "standup",
    }
    assert _recorded_titles(recall_emulator)[Platform.GOOGLE_CALENDAR] == expected


# --- failures -----------------------------------------------------------------------------


def test_a_429_halfway_is_waited_out_and_the_run_finishes(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    recall_emulator.add_events(str(calendar.recall_id), 6)
    sync_changes(calendar)
    for _ in range(3):
        recall_emulator.inject_fault(
            "429", count=1, path="/api/v2/calendar-events/", retry_after=0.05
        )
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.save()
    bot_requests_before = len(bot_calls(recall_emulator))
    result = reconcile_calendar(calendar)
    assert (result.scheduled, result.failed) == (6, 0)
    throttled = [r for r in bot_calls(recall_emulator)[bot_requests_before:] if r.status == 429]
    assert len(throttled) == 3
    assert len(recall_emulator.bots) == 6


def test_scheduling_works_in_chronological_order(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    starts = [in_hours(h) for h in (30, 5, 20, 10)]
    for start in starts:
        recall_emulator.add_event(str(calendar.recall_id), start_time=start)
    sync_changes(calendar)
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.save()
    reconcile_calendar(calendar)
    posted = [r.path.split("/")[4] for r in recall_emulator.requests_for("POST", "/bot/")]
    by_start = sorted(recall_emulator.events.values(), key=lambda e: e["start_time"])
    assert posted == [e["id"] for e in by_start]


def test_one_failure_does_not_stop_the_rest(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    remotes = recall_emulator.add_events(str(calendar.recall_id), 3)
    sync_changes(calendar)
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.save()
    recall_emulator.inject_fault(
        "500", count=10, path=f"/api/v2/calendar-events/{remotes[1]['id']}/bot/"
    )
    result = reconcile_calendar(calendar)
    assert (result.scheduled, result.failed) == (2, 1)
    assert list(result.errors) == [remotes[1]["id"]]
    assert "500" in result.errors[remotes[1]["id"]]
    recall_emulator.clear_faults()
    assert reconcile_calendar(calendar).scheduled == 1  # the next run repairs it


def test_409_and_507_are_retried(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    remote = recall_emulator.add_event(str(calendar.recall_id), start_time=in_hours(0.05))
    sync_changes(calendar)
    recall_emulator.inject_fault("409", count=1, path="/api/v2/calendar-events/")
    recall_emulator.inject_fault("507", count=1, path="/api/v2/calendar-events/")
    schedule_bot(local(remote))
    assert len(recall_emulator.bots) == 1
    assert [r.status for r in bot_calls(recall_emulator)] == [409, 507, 200]


# --- explicit schedule / unschedule ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"start_time": "past", "end_time": "past"}, "ended"),
        ({"is_deleted": True}, "deleted"),
        ({"meeting_url": None}, "no meeting link"),
    ],
)
def test_refusals_make_no_recall_call(recall_emulator, fields, reason):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    if fields.get("start_time") == "past":
        fields = {"start_time": in_hours(-3), "end_time": in_hours(-2)}
    remote = recall_emulator.add_event(str(calendar.recall_id), **fields)
    sync_changes(calendar)
    event = local(remote)
    before = len(recall_emulator.requests)
    with pytest.raises(SchedulingRefused) as refused:
        schedule_bot(event)
    assert refused.value.reason == reason
    assert reason in str(refused.value)
    assert len(recall_emulator.requests) == before
    assert bot_state(event) == ("not_possible", reason)


def test_cancelled_event_is_refused(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", Platform.MICROSOFT_OUTLOOK
    )
    remote = recall_emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    event = local(remote)
    CalendarEvent.objects.filter(pk=event.pk).update(is_cancelled=True)
    event.refresh_from_db()
    before = len(recall_emulator.requests)
    with pytest.raises(SchedulingRefused, match="cancelled"):
        schedule_bot(event)
    assert len(recall_emulator.requests) == before


def test_schedule_sends_the_complete_merged_config_and_remembers_it(recall_emulator, settings):
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "BOT_CONFIG": {
            "bot_name": "Acme Notetaker",
            "recording_config": {"transcript": {"provider": {"recallai_streaming": {}}}},
        },
    }
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    remote = recall_emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    event = local(remote)
    event.bot_config = {"recording_config": {"retention": {"type": "timed", "hours": 24}}}
    event.save()

    received = []
    signals.bot_scheduled.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t1")
    try:
        schedule_bot(event, {"bot_name": "Board meeting bot", "metadata": {"team": "board"}})
    finally:
        signals.bot_scheduled.disconnect(dispatch_uid="t1")

    expected = {
        "bot_name": "Board meeting bot",
        "metadata": {"team": "board"},
        "recording_config": {
            "transcript": {"provider": {"recallai_streaming": {}}},
            "retention": {"type": "timed", "hours": 24},
        },
    }
    (bot,) = recall_emulator.bots.values()
    assert bot["bot_config"] == expected
    assert received[0]["event"] == event and received[0]["bot_config"] == expected
    event.refresh_from_db()
    assert event.record_override == RecordOverride.ALWAYS  # the policy (off) won't undo it
    assert event.bots[0]["bot_id"] == bot["id"]

    # The meeting moves: the automatic reschedule keeps the per-call config.
    new_start = in_hours(48)
    recall_emulator.update_event(
        remote["id"], start_time=new_start, end_time=new_start + timedelta(hours=1)
    )
    assert sync_changes(calendar).events.updated == 1
    (bot,) = recall_emulator.bots.values()
    assert bot["bot_config"] == expected
    assert bot["join_at"].startswith(new_start.strftime("%Y-%m-%dT%H:%M"))


def test_unschedule_removes_the_bot_and_is_remembered(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    remote = recall_emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    event = local(remote)
    assert bot_state(event)[0] == "scheduled"

    received = []
    signals.bot_unscheduled.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t2")
    try:
        unschedule_bot(event)
    finally:
        signals.bot_unscheduled.disconnect(dispatch_uid="t2")
    assert recall_emulator.bots == {}
    assert [r["event"] for r in received] == [event]
    event.refresh_from_db()
    assert event.bots == [] and event.record_override == RecordOverride.NEVER
    assert bot_state(event) == ("none", "never record (meeting override)")
    assert reconcile_calendar(calendar).unchanged == 1  # the policy (all) won't re-add it


def test_unschedule_of_an_ended_meeting_is_refused(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    remote = recall_emulator.add_event(
        str(calendar.recall_id), start_time=in_hours(-2), end_time=in_hours(-1)
    )
    sync_changes(calendar)
    before = len(recall_emulator.requests)
    with pytest.raises(SchedulingRefused, match="ended"):
        unschedule_bot(local(remote))
    assert len(recall_emulator.requests) == before


def test_bot_state_explains_why_there_is_no_bot(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.ORGANIZER
    )
    remote = recall_emulator.add_event(str(calendar.recall_id), organizer="boss@acme.example")
    sync_changes(calendar)
    event = local(remote)
    assert bot_state(event) == ("none", "policy: not organized by the calendar's owner")
    CalendarEvent.objects.filter(pk=event.pk).update(record_override=RecordOverride.ALWAYS)
    event.refresh_from_db()
    assert bot_state(event) == ("none", "wanted, not scheduled yet")


def test_past_events_are_left_alone_by_reconcile(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    remote = recall_emulator.add_event(
        str(calendar.recall_id), start_time=in_hours(-2), end_time=in_hours(-1)
    )
    sync_changes(calendar)
    event = local(remote)
    event.bots = [{"bot_id": str(uuid.uuid4()), "start_time": event.start_time.isoformat()}]
    result = reconcile_events([event])
    assert (result.unscheduled, result.unchanged) == (0, 0)
    assert bot_calls(recall_emulator) == []


def test_disconnected_calendar_is_not_scheduled(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    Calendar.objects.filter(pk=calendar.pk).update(status=CalendarStatus.DISCONNECTED)
    calendar.refresh_from_db()
    recall_emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    assert recall_emulator.bots == {}


# --- the whole flow: webhook -> sync -> receiver -> Recall ----------------------------------


@pytest.mark.recall_emulator(webhooks=True, unruly=False)
def test_webhooks_drive_scheduling_end_to_end(recall_emulator):
    """The fixture processes each webhook as a committed request and a worker would."""
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    remote = recall_emulator.add_event(str(calendar.recall_id), title="Kick-off")
    assert len(recall_emulator.bots) == 1
    new_start = in_hours(50)
    recall_emulator.update_event(
        remote["id"], start_time=new_start, end_time=new_start + timedelta(minutes=30)
    )
    (bot,) = recall_emulator.bots.values()
    assert bot["join_at"].startswith(new_start.strftime("%Y-%m-%dT%H:%M"))
    recall_emulator.delete_event(remote["id"])
    assert recall_emulator.bots == {}
    assert bot_state(local(remote)) == ("not_possible", "deleted")


@pytest.mark.parametrize(
    "url",
    [
        "https://meet.example.com:99999/standup",
        "https://meet.example.com:abc/standup",
    ],
)
def test_a_meeting_link_with_a_malformed_port_does_not_fail_the_sync(recall_emulator, url):
    """urlsplit raises on such a port; one odd link must not fail its whole page on every retry."""
    calendar = builders.recall_calendar(recall_emulator, "alice@acme.example")
    odd = recall_emulator.add_event(
        str(calendar.recall_id), start_time=in_hours(24), meeting_url=url
    )
    fine = recall_emulator.add_event(str(calendar.recall_id), start_time=in_hours(25))

    sync_changes(calendar)

    assert local(fine).bots
    assert local(odd).bots
    assert bot_state(local(odd))[0] == "scheduled"
