"""Bot configuration has owners (issue 13, finding 1): end users set only the allowed keys, where a
bot goes and where its data flows come from the host and the event, one user's config never
changes the bot another user's copy of the meeting shares, staff may set more but never another
link or start, every config is checked before Recall is called, and the choice is saved in one
unit with the Recall call."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from django_recall_calendar import scheduling, sync
from django_recall_calendar.exceptions import RecallError
from django_recall_calendar.models import CalendarEvent, RecordOverride
from tests import builders

pytestmark = pytest.mark.django_db

ELSEWHERE = "https://meet.google.com/zzz-alic-eee"
HIJACK = {
    "meeting_url": ELSEWHERE,
    "webhook_url": "https://alice.example/hook",
    "recording_config": {
        "realtime_endpoints": [
            {"type": "webhook", "url": "https://alice.example/live", "events": ["transcript.data"]}
        ]
    },
}


@pytest.fixture(params=["managed", "self_managed"])
def mode(request, settings) -> str:
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "SCHEDULING_MODE": request.param}
    return request.param


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def bob():
    return builders.user("bob")


@pytest.fixture
def start():
    return (timezone.now() + timedelta(hours=3)).replace(microsecond=0)


def copy_of_meeting(emulator, owner, start) -> CalendarEvent:
    """``owner``'s copy of the one meeting both users are invited to (same link, same start)."""
    calendar = sync.refresh_calendar(
        builders.recall_calendar(emulator, f"{owner.username}@example.com", owner=owner)
    )
    (event,) = builders.synced_events(
        emulator,
        calendar,
        {
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
            "meeting_url": builders.MEET,
        },
    )
    return event


@pytest.fixture
def bobs(recall_emulator, bob, start) -> CalendarEvent:
    return copy_of_meeting(recall_emulator, bob, start)


@pytest.fixture
def alices(recall_emulator, alice, start) -> CalendarEvent:
    return copy_of_meeting(recall_emulator, alice, start)


def bot_url(event: CalendarEvent) -> str:
    return reverse("recall_calendar:api-event-bot", args=[event.pk])


def event_url(event: CalendarEvent) -> str:
    return reverse("recall_calendar:api-event-detail", args=[event.pk])


def bot_calls(emulator) -> int:
    """Every call that could create or change a bot (both scheduling modes)."""
    return sum(len(emulator.requests_for(method, "/bot")) for method in ("POST", "PATCH"))


def the_bot_of(emulator, event: CalendarEvent) -> dict:
    """The emulator's bot serving ``event``, by the app's own record of it (either mode's)."""
    event = CalendarEvent.objects.get(pk=event.pk)
    managed = [str(entry["bot_id"]) for entry in event.bots]
    own = [str(row.recall_bot_id) for row in event.self_managed_bots.all() if row.recall_bot_id]
    (bot_id,) = managed + own
    return emulator.bots[bot_id]


def full_sync() -> None:
    call_command("recall_sync", "--full", stdout=io.StringIO(), stderr=io.StringIO())


def assert_bob_is_served_as_before(emulator, bob, bobs, before: dict) -> None:
    """Bob's bot: the same bot, same link, start and config, nothing of Alice's in it; his API
    still says a bot joins."""
    bot = the_bot_of(emulator, bobs)
    assert bot["id"] == before["id"]
    for name in ("meeting_url", "join_at", "bot_config", "bot_name"):
        assert bot[name] == before[name], name
    assert "alice.example" not in json.dumps(emulator.bots[bot["id"]])
    assert "zzz-alic-eee" not in json.dumps(emulator.bots[bot["id"]])
    shown = client_of(bob).get(event_url(bobs)).json()
    assert shown["bot_state"] == "scheduled", shown


def test_alice_cannot_take_over_the_bot_bob_shares_with_her(
    mode, recall_emulator, alice, bob, bobs, alices
):
    """The issue's reproduction: bob schedules; alice, invited too, posts another meeting_url,
    her webhook_url and a realtime endpoint, then removes her bot; a full sync follows."""
    assert client_of(bob).post(bot_url(bobs), {}, format="json").status_code == 200
    before = the_bot_of(recall_emulator, bobs)
    calls = bot_calls(recall_emulator)

    for hijack in (HIJACK, {"recording_config": HIJACK["recording_config"]}):
        taken = client_of(alice).post(bot_url(alices), {"bot_config": hijack}, format="json")
        assert taken.status_code == 400
        assert next(iter(hijack)) in taken.json()["bot_config"][0]
    assert bot_calls(recall_emulator) == calls  # refused before Recall heard of it
    removed = client_of(alice).delete(bot_url(alices))
    assert removed.status_code == 200 and removed.json()["bot_state"] == "none"

    assert_bob_is_served_as_before(recall_emulator, bob, bobs, before)
    full_sync()
    assert_bob_is_served_as_before(recall_emulator, bob, bobs, before)
    alices.refresh_from_db()
    assert (alices.record_override, alices.bot_config) == ("never", {})


def test_alice_leaving_the_bot_she_shares_with_bob_leaves_it_his(
    mode, recall_emulator, alice, bob, bobs, alices
):
    assert client_of(bob).post(bot_url(bobs), {}, format="json").status_code == 200
    assert client_of(alice).post(bot_url(alices), {}, format="json").status_code == 200
    before = the_bot_of(recall_emulator, bobs)
    assert len(recall_emulator.bots) == 1  # one meeting, one bot: deduplication at work
    assert the_bot_of(recall_emulator, alices)["id"] == before["id"]

    assert client_of(alice).delete(bot_url(alices)).status_code == 200

    assert_bob_is_served_as_before(recall_emulator, bob, bobs, before)
    assert list(recall_emulator.bots) == [before["id"]]
    full_sync()
    assert_bob_is_served_as_before(recall_emulator, bob, bobs, before)
    assert client_of(alice).get(event_url(alices)).json()["bot_state"] == "none"


def test_alices_own_bot_name_gives_her_a_bot_of_her_own(
    mode, recall_emulator, alice, bob, bobs, alices
):
    assert client_of(bob).post(bot_url(bobs), {}, format="json").status_code == 200
    before = the_bot_of(recall_emulator, bobs)

    named = client_of(alice).post(
        bot_url(alices), {"bot_config": {"bot_name": "Alice's notes"}}, format="json"
    )

    assert named.status_code == 200 and named.json()["bot_state"] == "scheduled"
    hers = the_bot_of(recall_emulator, alices)
    assert hers["id"] != before["id"] and hers["bot_name"] == "Alice's notes"
    assert_bob_is_served_as_before(recall_emulator, bob, bobs, before)

    assert client_of(alice).delete(bot_url(alices)).status_code == 200
    assert list(recall_emulator.bots) == [before["id"]]  # hers went, his stayed
    full_sync()
    assert_bob_is_served_as_before(recall_emulator, bob, bobs, before)


def test_copies_configured_alike_still_share_one_bot(recall_emulator, alice, bob, bobs, alices):
    same = {"bot_config": {"bot_name": "Team notes"}}
    assert client_of(bob).post(bot_url(bobs), same, format="json").status_code == 200
    assert client_of(alice).post(bot_url(alices), same, format="json").status_code == 200

    (bot,) = recall_emulator.bots.values()
    assert sorted(bot["event_ids"]) == sorted([str(bobs.recall_id), str(alices.recall_id)])


@pytest.mark.parametrize(
    ("bot_config", "named"),
    [
        ({"meeting_url": ELSEWHERE}, "meeting_url"),
        ({"join_at": "2030-01-01T00:00:00Z"}, "join_at"),
        ({"webhook_url": "https://alice.example/hook"}, "webhook_url"),
        ({"recording_config": HIJACK["recording_config"]}, "recording_config"),
        ({"metadata": {"deduplication_key": "someone-elses"}}, "metadata"),
        ({"automatic_leave": {"waiting_room_timeout": 1}}, "automatic_leave"),
        ({"bot_name": "Mine", "chat": {"on_bot_join": {"message": "hi"}}}, "chat"),
    ],
)
def test_a_key_users_may_not_set_is_refused_by_name_before_recall(
    recall_emulator, alice, alices, bot_config, named
):
    calls = bot_calls(recall_emulator)

    response = client_of(alice).post(bot_url(alices), {"bot_config": bot_config}, format="json")

    assert response.status_code == 400
    (message,) = response.json()["bot_config"]
    assert f"bot_config.{named}" in message and "bot_name" in message
    assert bot_calls(recall_emulator) == calls
    alices.refresh_from_db()
    assert (alices.record_override, alices.bot_config) == ("", {})


def test_the_host_may_let_users_set_more_keys(recall_emulator, settings, alice, alices):
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "USER_BOT_CONFIG_KEYS": ("bot_name", "chat.on_bot_join.message"),
    }
    api = client_of(alice)
    allowed = {"chat": {"on_bot_join": {"message": "Recording for Alice"}}}
    assert api.post(bot_url(alices), {"bot_config": allowed}, format="json").status_code == 200
    assert the_bot_of(recall_emulator, alices)["bot_config"]["chat"] == allowed["chat"]

    beside = {"chat": {"on_bot_join": {"send_to": "host"}}}
    refused = api.post(bot_url(alices), {"bot_config": beside}, format="json")
    assert refused.status_code == 400
    assert "bot_config.chat.on_bot_join.send_to" in refused.json()["bot_config"][0]


def test_where_a_bot_goes_and_streams_comes_from_the_host_and_the_event(
    recall_emulator, settings, alice, alices
):
    endpoint = {"type": "webhook", "url": "https://host.example/live", "events": ["x"]}
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "BOT_CONFIG": {
            "bot_name": "Acme",
            "meeting_url": ELSEWHERE,  # a host's mistake: a bot still goes to its own meeting
            "recording_config": {"realtime_endpoints": [endpoint]},
        },
    }
    # A config stored before this release, when users could set anything.
    CalendarEvent.objects.filter(pk=alices.pk).update(bot_config={"meeting_url": ELSEWHERE})

    response = client_of(alice).post(
        bot_url(alices), {"bot_config": {"bot_name": "Alice"}}, format="json"
    )

    assert response.status_code == 200, response.content
    bot = the_bot_of(recall_emulator, alices)
    assert bot["meeting_url"] == builders.MEET
    assert "meeting_url" not in bot["bot_config"] and "join_at" not in bot["bot_config"]
    assert bot["bot_config"]["recording_config"]["realtime_endpoints"] == [endpoint]
    assert bot["bot_name"] == "Alice"


def raw_post(api: APIClient, event: CalendarEvent, body: str):
    return api.post(bot_url(event), data=body, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"bot_config": {"bot_name": "a\\u0000b"}}', "NUL"),
        ('{"bot_config": {"bot_name": "\\ud800"}}', "surrogate"),
        ('{"bot_config": {"bot_name": 1e999}}', "finite"),
        ('{"bot_config": {"bot_name": "' + "x" * 101 + '"}}', "at most 100 characters"),
        ('{"bot_config": {"bot_name": 7}}', "must be text"),
        ('{"bot_config": {"bot_name": "' + "x" * 17000 + '"}}', "at most 16384"),
        ('{"bot_config": {"bot_name": NaN}}', "JSON"),
    ],
)
def test_a_config_the_database_or_recall_would_refuse_is_a_400_before_recall(
    recall_emulator, alice, alices, body, reason
):
    calls = bot_calls(recall_emulator)

    response = raw_post(client_of(alice), alices, body)

    assert response.status_code == 400
    assert reason in json.dumps(response.json()), response.json()
    assert bot_calls(recall_emulator) == calls
    alices.refresh_from_db()
    assert (alices.record_override, alices.bot_config) == ("", {})


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"metadata": "notes"}, "metadata must be an object"),
        ({"chat": {"on_bot_join": {"message": "x" * 4097}}}, "at most 4096"),
        ({"recording_config": []}, "recording_config must be an object"),
        ({"zoom": {"user_email": "a\x00"}}, "NUL"),
        ({"meeting_url": ELSEWHERE}, "its own meeting's link"),
        ({"join_at": "2030-01-01T00:00:00Z"}, "its own meeting's link"),
    ],
)
def test_even_the_host_and_staff_cannot_send_an_unusable_config_to_recall(
    recall_emulator, alices, config, reason
):
    calls = bot_calls(recall_emulator)

    with pytest.raises(scheduling.InvalidBotConfig, match=reason):
        scheduling.schedule_bot(alices, config)

    assert bot_calls(recall_emulator) == calls
    alices.refresh_from_db()
    assert (alices.record_override, alices.bot_config) == ("", {})


def test_a_stored_config_and_a_new_one_together_stay_within_the_size_bound(recall_emulator, alices):
    CalendarEvent.objects.filter(pk=alices.pk).update(
        bot_config={"chat": {"on_bot_join": {"message": "x" * 4000}}, "variant": {"a": "y" * 9000}}
    )
    alices.refresh_from_db()
    with pytest.raises(scheduling.InvalidBotConfig, match="at most 16384"):
        scheduling.schedule_bot(alices, {"breakout_room": {"room_id": "z" * 4000}})
    assert bot_calls(recall_emulator) == 0


# ----- one unit of work ----------------------------------------------------------------------


def test_recall_refusing_keeps_no_half_made_choice(recall_emulator, alice, alices):
    recall_emulator.inject_fault("500", count=50, path="/api/v2/calendar-events/")

    response = client_of(alice).post(
        bot_url(alices), {"bot_config": {"bot_name": "Alice"}}, format="json"
    )

    assert response.status_code == 502
    alices.refresh_from_db()
    assert (alices.record_override, alices.bot_config) == ("", {})
    assert recall_emulator.bots == {}


@pytest.fixture
def failing_saves():
    """The database refuses every change of a meeting row (a full disk, a lost connection...)."""
    table = CalendarEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_event_change() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_event_change BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_event_change()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse_event_change BEFORE UPDATE ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )


@pytest.mark.parametrize("override", [RecordOverride.ALWAYS, RecordOverride.NEVER])
def test_a_choice_the_database_cannot_save_never_reaches_recall(
    recall_emulator, bobs, failing_saves, override
):
    with pytest.raises(DatabaseError):
        scheduling.set_record_override(bobs, override, None)

    assert recall_emulator.requests_for(None, "/bot/") == []
    assert bobs.record_override == ""  # the instance is not left claiming the choice


def test_the_instance_keeps_its_old_values_when_recall_fails(recall_emulator, alices):
    recall_emulator.inject_fault("500", count=50, path="/api/v2/calendar-events/")
    with pytest.raises(RecallError):
        scheduling.set_record_override(alices, RecordOverride.ALWAYS, {"bot_name": "A"})
    assert (alices.record_override, alices.bot_config) == ("", {})


# ----- staff in the admin ---------------------------------------------------------------------

EVENTS = reverse("admin:recall_calendar_calendarevent_changelist")


def schedule_action(admin_client, event: CalendarEvent, bot_config: dict):
    return admin_client.post(
        EVENTS,
        {
            "action": "schedule_bot",
            "_selected_action": [event.pk],
            "post": "yes",
            "bot_name": "",
            "bot_config": json.dumps(bot_config),
        },
    )


def change_page(event: CalendarEvent) -> str:
    return reverse("admin:recall_calendar_calendarevent_change", args=[event.pk])


def test_staff_may_set_where_a_bots_data_flows(admin_client, recall_emulator, alices):
    response = schedule_action(
        admin_client, alices, {"recording_config": HIJACK["recording_config"]}
    )

    assert response.status_code == 302
    bot = the_bot_of(recall_emulator, alices)
    assert bot["bot_config"]["recording_config"] == HIJACK["recording_config"]
    assert bot["meeting_url"] == builders.MEET


@pytest.mark.parametrize("key", ["meeting_url", "join_at"])
def test_staff_cannot_send_a_bot_to_another_link_or_time(
    admin_client, recall_emulator, alices, key
):
    config = {key: ELSEWHERE if key == "meeting_url" else "2030-01-01T00:00:00Z"}

    action = schedule_action(admin_client, alices, config)
    assert action.status_code == 200 and "its own meeting" in action.content.decode()
    edited = admin_client.post(
        change_page(alices), {"record_override": "always", "bot_config": json.dumps(config)}
    )
    assert edited.status_code == 200
    assert "its own meeting" in str(edited.context["adminform"].form.errors["bot_config"])

    assert recall_emulator.requests_for(None, "/bot/") == []
    alices.refresh_from_db()
    assert (alices.record_override, alices.bot_config) == ("", {})


def test_a_change_recall_refuses_on_the_event_page_is_not_saved(
    admin_client, recall_emulator, alices
):
    from django.contrib.admin.models import LogEntry
    from django.contrib.messages import get_messages

    recall_emulator.inject_fault("500", count=50, path="/api/v2/calendar-events/")

    response = admin_client.post(
        change_page(alices), {"record_override": "always", "bot_config": '{"bot_name": "Staff"}'}
    )

    assert response.status_code == 302 and response.url == change_page(alices)
    ((level, text),) = [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]
    assert level == "error" and text.startswith("Not saved: Recall was not updated")
    alices.refresh_from_db()
    assert (alices.record_override, alices.bot_config) == ("", {})
    assert not LogEntry.objects.filter(object_id=str(alices.pk)).exists()


@pytest.mark.urls("example_project.urls")
def test_alices_switch_on_the_example_page_leaves_bobs_bot_his(
    client, recall_emulator, alice, bob, bobs, alices
):
    """The meetings page sets no bot config at all: its switch shares or leaves the meeting's
    bot, and leaving never removes the bot Bob's copy still uses."""
    scheduling.set_record_override(bobs, RecordOverride.ALWAYS)
    before = the_bot_of(recall_emulator, bobs)
    client.force_login(alice)
    record = reverse("meeting_record", args=[alices.pk])

    assert client.post(record, {"override": "always", "bot_config": '{"x": 1}'}).status_code == 302
    assert the_bot_of(recall_emulator, alices)["id"] == before["id"]
    assert client.post(record, {"override": "never"}).status_code == 302

    bot = the_bot_of(recall_emulator, bobs)
    assert (bot["id"], bot["bot_config"], bot["meeting_url"]) == (
        before["id"],
        before["bot_config"],
        before["meeting_url"],
    )
    assert bot["event_ids"] == [str(bobs.recall_id)]
