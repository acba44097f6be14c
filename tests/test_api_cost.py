"""What one user can make the app spend of the Recall budget every user shares: the REST API's
writes are rate-limited per user (DRF throttle scopes; reads are not), and quick policy changes of
one calendar are applied once."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from rest_framework.test import APIClient

from django_recall_calendar import sync
from django_recall_calendar.throttles import BOT_WRITES, CALENDAR_WRITES
from tests import builders

from .test_api_bots import bot_calls, bot_url, hours_from_now

pytestmark = pytest.mark.django_db


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def api(alice) -> APIClient:
    return signed_in(alice)


def connected_calendar(emulator, user):
    """The user's calendar, connected at the emulator and mirrored here."""
    email = f"{user.username}@example.com"
    return sync.refresh_calendar(builders.recall_calendar(emulator, email, owner=user))


@pytest.fixture
def calendar(recall_emulator, alice):
    return connected_calendar(recall_emulator, alice)


def rates(settings, **scopes) -> None:
    settings.REST_FRAMEWORK = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": scopes,
    }


def test_bot_writes_past_the_rate_answer_429_without_calling_recall(
    api, recall_emulator, calendar, settings
):
    rates(settings, **{BOT_WRITES: "2/min"})
    (event,) = builders.synced_events(recall_emulator, calendar, hours_from_now(2))

    answers = [api.post(bot_url(event), {}, format="json").status_code for _ in range(2)]
    calls = bot_calls(recall_emulator)
    throttled = api.delete(bot_url(event))

    assert answers == [200, 200]
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert "throttled" in throttled.json()["detail"]
    assert bot_calls(recall_emulator) == calls  # Recall was not called
    # Reading is not limited.
    assert api.get(reverse("recall_calendar:api-event-detail", args=[event.pk])).status_code == 200


def patch_policy(api, calendar) -> int:
    url = reverse("recall_calendar:api-calendar-detail", args=[calendar.pk])
    return api.patch(url, {"min_attendees": 0}, format="json").status_code


def test_calendar_writes_have_a_default_rate_when_the_host_sets_none(api, calendar):
    answers = [patch_policy(api, calendar) for _ in range(21)]

    assert answers == [200] * 20 + [429]


def test_the_host_sets_the_rate_through_drf_and_none_turns_it_off(api, calendar, settings):
    rates(settings, **{CALENDAR_WRITES: None})

    assert {patch_policy(api, calendar) for _ in range(25)} == {200}


def test_one_users_throttle_does_not_limit_another(
    api, calendar, settings, django_user_model, recall_emulator
):
    rates(settings, **{CALENDAR_WRITES: "1/min"})
    bob = django_user_model.objects.create_user("bob")
    bobs, bobs_calendar = signed_in(bob), connected_calendar(recall_emulator, bob)

    assert [patch_policy(api, calendar) for _ in range(2)] == [200, 429]
    assert patch_policy(bobs, bobs_calendar) == 200


@pytest.fixture
def queued(settings):
    """A task backend that keeps tasks (a worker that has not picked them up yet)."""
    backends = f"{django_settings.TASKS_MODULE}.backends"
    settings.TASKS = {**settings.TASKS, "queued": {"BACKEND": f"{backends}.dummy.DummyBackend"}}
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "TASK_BACKEND": "queued"}
    backend = import_module(django_settings.TASKS_MODULE).task_backends["queued"]
    yield backend
    backend.results.clear()


def policy_runs(backend) -> list:
    return [r for r in backend.results if r.task.name == "apply_recording_policy"]


def test_quick_policy_changes_of_a_calendar_are_applied_once(
    api, recall_emulator, calendar, queued, django_capture_on_commit_callbacks
):
    builders.synced_events(
        recall_emulator, calendar, hours_from_now(1), hours_from_now(5), hours_from_now(30)
    )
    url = reverse("recall_calendar:api-calendar-detail", args=[calendar.pk])

    def toggle(policy: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            assert api.patch(url, {"recording_policy": policy}, format="json").status_code == 200

    for policy in ("all", "off", "organizer", "all"):
        toggle(policy)

    [run] = policy_runs(queued)  # one application queued for four changes
    run.task.call(*run.args, **run.kwargs)
    assert len(recall_emulator.bots) == 3  # the last policy, applied
    assert bot_calls(recall_emulator) == 3  # one call per meeting, not one per change and meeting

    toggle("off")  # a change after the run started needs (and gets) a run of its own
    assert len(policy_runs(queued)) == 2
