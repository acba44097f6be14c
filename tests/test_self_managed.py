"""Self-managed scheduling (``/api/v1/bot/``): one bot per key, moved, removed, never duplicated."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from django_recall_calendar import conf
from django_recall_calendar.calendars import disconnect_calendar, sync_changes
from django_recall_calendar.client import RecallClient
from django_recall_calendar.dedup import deduplication_key
from django_recall_calendar.models import CalendarEvent, Platform, RecordingPolicy, SelfManagedBot
from django_recall_calendar.scheduling import (
    BotAlreadyDispatched,
    bot_state,
    reconcile_calendar,
    schedule_bot,
    unschedule_bot,
)
from tests import builders

from .test_scheduling import in_hours, local, teams_link

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]

BOTS = "/api/v1/bot/"


@pytest.fixture
def emulator(recall_emulator, settings):
    """The emulator, in self-managed mode; calendars record every meeting unless told otherwise."""
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "SCHEDULING_MODE": "self_managed",
        "BOT_CONFIG": {"bot_name": "Acme Notetaker"},
        "DEFAULT_RECORDING_POLICY": "all",
    }
    return recall_emulator


def v1_calls(emulator, method: str | None = None) -> list:
    return emulator.requests_for(method, BOTS)


def test_a_wanted_meeting_gets_one_v1_bot_joining_at_its_start(emulator):
    calendar = builders.recall_calendar(emulator, "alice@acme.example")
    start = in_hours(24)
    remote = emulator.add_event(str(calendar.recall_id), start_time=start)
    sync_changes(calendar)

    (bot,) = emulator.bots.values()
    row = SelfManagedBot.objects.get()
    assert str(row.recall_bot_id) == bot["id"]
    assert bot["join_at"].startswith(start.strftime("%Y-%m-%dT%H:%M:%S"))
    assert bot["meeting_url"] == remote["meeting_url"]
    assert bot["bot_name"] == "Acme Notetaker"
    assert bot["metadata"] == {"deduplication_key": row.deduplication_key}
    assert emulator.requests_for(None, "/calendar-events/" + remote["id"] + "/bot/") == []
    assert bot_state(local(remote))[0] == "scheduled"


def test_two_users_of_one_meeting_share_one_bot(emulator):
    alice = builders.recall_calendar(emulator, "alice@acme.example", Platform.MICROSOFT_OUTLOOK)
    bob = builders.recall_calendar(emulator, "bob@acme.example", Platform.GOOGLE_CALENDAR)
    start = in_hours(24)
    for calendar, oid in ((alice, "oid-a"), (bob, "oid-b")):
        emulator.add_event(str(calendar.recall_id), start_time=start, meeting_url=teams_link(oid))
        sync_changes(calendar)
    assert len(emulator.bots) == 1
    assert SelfManagedBot.objects.get().events.count() == 2
    assert len(v1_calls(emulator, "POST")) == 1


def test_event_scheme_gives_each_calendar_its_bot(emulator, settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "DEDUPLICATION": "event"}
    start = in_hours(24)
    for email in ("alice@acme.example", "bob@acme.example"):
        calendar = builders.recall_calendar(emulator, email)
        emulator.add_event(str(calendar.recall_id), start_time=start, meeting_url=teams_link(email))
        sync_changes(calendar)
    assert len(emulator.bots) == 2


def test_a_moved_meeting_patches_join_at_instead_of_creating(emulator):
    calendar = builders.recall_calendar(emulator, "alice@acme.example")
    remote = emulator.add_event(str(calendar.recall_id), start_time=in_hours(24))
    sync_changes(calendar)
    (bot_id,) = emulator.bots

    new_start = in_hours(30)
    emulator.update_event(
        remote["id"], start_time=new_start, end_time=new_start + timedelta(hours=1)
    )
    sync_changes(calendar)

    (bot,) = emulator.bots.values()
    assert bot["id"] == bot_id
    assert bot["join_at"].startswith(new_start.strftime("%Y-%m-%dT%H:%M:%S"))
    assert [r.method for r in v1_calls(emulator)] == ["POST", "PATCH"]
    row = SelfManagedBot.objects.get()
    assert row.join_at == new_start and str(row.recall_bot_id) == bot_id
    assert bot_state(local(remote))[0] == "scheduled"


def test_a_bot_gone_at_recall_is_replaced_when_the_meeting_moves(emulator):
    calendar = builders.recall_calendar(emulator, "alice@acme.example")
    remote = emulator.add_event(str(calendar.recall_id), start_time=in_hours(24))
    sync_changes(calendar)
    (bot_id,) = emulator.bots
    RecallClient.from_settings().delete_bot(bot_id)  # deleted behind the app's back

    emulator.update_event(remote["id"], start_time=in_hours(30), end_time=in_hours(31))
    sync_changes(calendar)
    (new_id,) = emulator.bots
    assert new_id != bot_id
    assert str(SelfManagedBot.objects.get().recall_bot_id) == new_id


def test_a_shared_meeting_that_moves_ends_with_one_bot_at_the_new_time(emulator):
    alice = builders.recall_calendar(emulator, "alice@acme.example")
    bob = builders.recall_calendar(emulator, "bob@acme.example")
    start, new_start = in_hours(24), in_hours(27)
    remotes = []
    for calendar in (alice, bob):
        remotes.append(
            emulator.add_event(
                str(calendar.recall_id), start_time=start, meeting_url="https://zoom.us/j/123"
            )
        )
        sync_changes(calendar)
    for calendar, remote in zip((alice, bob), remotes, strict=True):
        emulator.update_event(
            remote["id"], start_time=new_start, end_time=new_start + timedelta(hours=1)
        )
        sync_changes(calendar)
    (bot,) = emulator.bots.values()
    assert bot["join_at"].startswith(new_start.strftime("%Y-%m-%dT%H:%M:%S"))
    assert SelfManagedBot.objects.get().events.count() == 2


def test_cancelled_meeting_deletes_the_bot_only_when_nobody_else_wants_it(emulator):
    alice = builders.recall_calendar(emulator, "alice@acme.example")
    bob = builders.recall_calendar(emulator, "bob@acme.example")
    start = in_hours(24)
    remotes = {}
    for calendar in (alice, bob):
        remotes[calendar.pk] = emulator.add_event(
            str(calendar.recall_id), start_time=start, meeting_url="https://zoom.us/j/123"
        )
        sync_changes(calendar)

    emulator.delete_event(remotes[alice.pk]["id"])  # Alice's copy is gone (she left the invite)
    sync_changes(alice)
    assert len(emulator.bots) == 1
    assert SelfManagedBot.objects.get().events.get() == local(remotes[bob.pk])

    emulator.delete_event(remotes[bob.pk]["id"])
    sync_changes(bob)
    assert emulator.bots == {}
    assert not SelfManagedBot.objects.exists()
    assert bot_state(local(remotes[bob.pk])) == ("not_possible", "deleted")


def test_policy_change_removes_and_adds_self_managed_bots(emulator):
    calendar = builders.recall_calendar(emulator, "alice@acme.example")
    emulator.add_events(str(calendar.recall_id), 3)
    sync_changes(calendar)
    assert len(emulator.bots) == 3
    calendar.recording_policy = RecordingPolicy.OFF
    calendar.save()
    assert reconcile_calendar(calendar).unscheduled == 3
    assert emulator.bots == {} and not SelfManagedBot.objects.exists()
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.save()
    assert reconcile_calendar(calendar).scheduled == 3
    assert reconcile_calendar(calendar).unchanged == 3
    assert len(emulator.bots) == 3 and SelfManagedBot.objects.count() == 3


def test_explicit_schedule_and_unschedule(emulator):
    calendar = builders.recall_calendar(
        emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    remote = emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    event = local(remote)
    schedule_bot(event, {"bot_name": "Special"})
    (bot,) = emulator.bots.values()
    assert bot["bot_name"] == "Special"
    assert bot_state(event)[0] == "scheduled"
    unschedule_bot(event)
    assert emulator.bots == {}
    assert bot_state(CalendarEvent.objects.get(pk=event.pk))[0] == "none"


def test_a_dispatched_bot_is_reported_not_hidden(emulator):
    calendar = builders.recall_calendar(emulator, "alice@acme.example")
    remote = emulator.add_event(
        str(calendar.recall_id), start_time=in_hours(-0.1), end_time=in_hours(0.5)
    )
    sync_changes(calendar)  # in progress: the bot joins at once
    assert len(emulator.bots) == 1
    with pytest.raises(BotAlreadyDispatched, match="already been dispatched"):
        unschedule_bot(local(remote))

    # The bot is still in the meeting: it stays recorded here, and no second one is sent.
    assert bot_state(local(remote))[0] == "scheduled"
    assert reconcile_calendar(calendar).scheduled == 0
    assert len(emulator.bots) == 1 and SelfManagedBot.objects.count() == 1


def test_moving_a_meeting_whose_bot_already_joined_is_reported(emulator):
    calendar = builders.recall_calendar(emulator, "alice@acme.example")
    remote = emulator.add_event(
        str(calendar.recall_id), start_time=in_hours(-0.1), end_time=in_hours(0.5)
    )
    sync_changes(calendar)
    emulator.update_event(remote["id"], start_time=in_hours(2), end_time=in_hours(3))
    sync_changes(calendar)  # its reconcile fails; so does the next one, with the same clear reason
    assert [r.method for r in v1_calls(emulator)] == ["POST", "PATCH", "DELETE"]
    result = reconcile_calendar(calendar)
    assert result.failed == 1
    assert "already been dispatched" in result.errors[remote["id"]]
    assert len(emulator.bots) == 1


def test_a_failed_create_releases_the_claim(emulator):
    calendar = builders.recall_calendar(emulator, "alice@acme.example")
    emulator.inject_fault("500", count=20, path=BOTS)
    emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    assert emulator.bots == {} and not SelfManagedBot.objects.exists()
    emulator.clear_faults()
    assert reconcile_calendar(calendar).scheduled == 1
    assert len(emulator.bots) == 1


def _claimed_elsewhere(emulator, *, stale: bool) -> tuple[CalendarEvent, SelfManagedBot]:
    """A wanted meeting whose key another worker claimed (and, if ``stale``, then crashed)."""
    calendar = builders.recall_calendar(
        emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    remote = emulator.add_event(str(calendar.recall_id))
    sync_changes(calendar)
    event = local(remote)
    row = SelfManagedBot.objects.create(
        deduplication_key=deduplication_key(event),
        meeting_url=event.meeting_url,
        join_at=event.start_time,
    )
    if stale:
        SelfManagedBot.objects.filter(pk=row.pk).update(
            updated_at=timezone.now()
            - conf.duration("SELF_MANAGED_CLAIM_TIMEOUT")
            - timedelta(seconds=1)
        )
    return event, row


def test_a_key_claimed_by_another_worker_is_not_created_twice(emulator):
    """The interleaving of two syncs, made deterministic: the loser joins the winner's claim."""
    event, row = _claimed_elsewhere(emulator, stale=False)
    schedule_bot(event)
    assert v1_calls(emulator) == []
    assert list(row.events.all()) == [event]


def test_a_stale_claim_adopts_the_bot_its_crashed_claimer_created(emulator):
    event, row = _claimed_elsewhere(emulator, stale=True)
    orphan = RecallClient.from_settings().create_bot(
        meeting_url=event.meeting_url, metadata={"deduplication_key": row.deduplication_key}
    )
    schedule_bot(event)
    assert list(emulator.bots) == [orphan["id"]]
    row.refresh_from_db()
    assert str(row.recall_bot_id) == orphan["id"]
    assert bot_state(event)[0] == "scheduled"


def test_a_stale_claim_without_a_bot_creates_one(emulator):
    event, row = _claimed_elsewhere(emulator, stale=True)
    schedule_bot(event)
    (bot_id,) = emulator.bots
    row.refresh_from_db()
    assert str(row.recall_bot_id) == bot_id


def test_a_longer_claim_timeout_leaves_a_younger_claim_to_its_claimer(emulator, settings):
    event, row = _claimed_elsewhere(emulator, stale=True)  # stale by the default (2 minutes)
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "SELF_MANAGED_CLAIM_TIMEOUT": 3600}
    schedule_bot(event)
    assert v1_calls(emulator) == []
    row.refresh_from_db()
    assert row.recall_bot_id is None


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_syncs_create_one_bot_per_meeting(emulator):
    """Two workers sync two users' calendars holding the same meetings at the same moment."""
    if connection.vendor == "sqlite":
        pytest.skip(
            "SQLite's shared-cache in-memory test database fails concurrent writers with "
            "'table is locked' instead of waiting; run with DATABASE_URL (PostgreSQL). The "
            "interleavings are covered deterministically by the claim tests above."
        )
    alice = builders.recall_calendar(emulator, "alice@acme.example", Platform.MICROSOFT_OUTLOOK)
    bob = builders.recall_calendar(emulator, "bob@acme.example", Platform.GOOGLE_CALENDAR)
    starts = [in_hours(24 + i) for i in range(5)]
    for calendar, oid in ((alice, "oid-a"), (bob, "oid-b")):
        emulator.add_event_list(
            str(calendar.recall_id),
            [{"start_time": s, "meeting_url": teams_link(oid)} for s in starts],
        )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(calendar):
        try:
            barrier.wait(timeout=10)
            sync_changes(calendar)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in (alice, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(emulator.bots) == 5
    assert len(v1_calls(emulator, "POST")) == 5
    assert SelfManagedBot.objects.count() == 5
    assert all(
        row.events.count() == 2 and row.recall_bot_id for row in SelfManagedBot.objects.all()
    )


def test_disconnecting_a_calendar_deletes_its_self_managed_bots_at_recall(emulator):
    """Recall's calendar delete unschedules only managed bots; our v1 bots are ours to delete."""

    alice = builders.recall_calendar(emulator, "alice@acme.example")
    bob = builders.recall_calendar(emulator, "bob@acme.example")
    solo = emulator.add_event(str(alice.recall_id), start_time=in_hours(24))
    shared_start = in_hours(30)
    for calendar in (alice, bob):
        emulator.add_event(
            str(calendar.recall_id), start_time=shared_start, meeting_url=teams_link("x")
        )
    sync_changes(alice)
    sync_changes(bob)
    assert len(emulator.bots) == 2

    disconnect_calendar(alice)

    (left,) = emulator.bots.values()  # the shared meeting's bot stays: bob still wants it
    assert left["meeting_url"] != solo["meeting_url"]
    row = SelfManagedBot.objects.get()
    assert str(row.recall_bot_id) == left["id"]
    assert [event.calendar for event in row.events.all()] == [bob]


def test_deleting_a_user_deletes_their_self_managed_bots_at_recall(
    emulator, django_capture_on_commit_callbacks
):
    alice = builders.recall_calendar(emulator, "alice@acme.example")
    emulator.add_event(str(alice.recall_id), start_time=in_hours(24))
    sync_changes(alice)
    assert len(emulator.bots) == 1

    with django_capture_on_commit_callbacks(execute=True):
        alice.user.delete()

    assert emulator.bots == {}
    assert not SelfManagedBot.objects.exists()


def test_following_the_policy_again_reports_a_dispatched_bot_as_409(emulator):
    """Through the REST API, "" must answer as "never" does, not with a 502 as if Recall failed."""
    calendar = builders.recall_calendar(emulator, "alice@acme.example")
    remote = emulator.add_event(
        str(calendar.recall_id), start_time=in_hours(-0.1), end_time=in_hours(0.5)
    )
    sync_changes(calendar)  # in progress: the bot joins at once
    calendar.recording_policy = RecordingPolicy.OFF
    calendar.save()
    api = APIClient()
    api.force_login(calendar.user)
    url = reverse("recall_calendar:api-event-bot", args=[local(remote).pk])

    response = api.post(url, {"override": ""}, format="json")

    assert response.status_code == 409
    assert "already been dispatched" in response.json()["detail"]
    assert len(emulator.bots) == 1


@pytest.mark.parametrize("metadata", ["notes", ["a"], 3])
def test_bot_metadata_that_is_not_an_object_is_a_400_not_a_500(emulator, metadata):
    """Self-managed bots merge the deduplication key into ``metadata``: another type crashed."""
    calendar = builders.recall_calendar(
        emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )
    remote = emulator.add_event(str(calendar.recall_id), start_time=in_hours(24))
    sync_changes(calendar)
    api = APIClient()
    api.force_login(calendar.user)
    url = reverse("recall_calendar:api-event-bot", args=[local(remote).pk])

    response = api.post(url, {"bot_config": {"metadata": metadata}}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["bot_config"]
    assert emulator.bots == {}
