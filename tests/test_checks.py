"""System checks: each one fires, with its id and hint, exactly when the configuration is wrong."""

import pytest
from django.contrib import admin
from django.core.checks import ERROR, WARNING, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import path
from social_core.pipeline import DEFAULT_AUTH_PIPELINE

from django_recall_calendar.checks import LOAD_EXTRA_DATA, LOGIN_STEP, PIPELINE_STEP

VALID_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALL_IDS = {
    "E001",
    "W001",
    "W002",
    "E003",
    "E004",
    "E005",
    "W006",
    "E007",
    "E008",
    "W009",
    "W010",
    "W011",
    "E012",
    "E020",
    "E021",
}

#: The README's pipeline: the login step before social_user, ours right after load_extra_data.
VALID_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    LOGIN_STEP,
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.social_auth.associate_user",
    LOAD_EXTRA_DATA,
    PIPELINE_STEP,
)

#: A URLconf without the app's URLs (ROOT_URLCONF = this module): only the admin is routed.
urlpatterns = [path("admin/", admin.site.urls)]


def recall_messages(deploy=False):
    """Our messages from a real ``manage.py check`` run, keyed by their short id."""
    return {
        message.id.removeprefix("recall_calendar."): message
        for message in run_checks(tags=["recall_calendar"], include_deployment_checks=deploy)
        if message.id and message.id.startswith("recall_calendar.")
    }


def only(messages, short_id):
    """Assert exactly one message of ours fired, and return it."""
    assert set(messages) == {short_id}, messages
    return messages[short_id]


@pytest.fixture
def valid(settings):
    """A complete, valid configuration: nothing of ours fires."""
    settings.RECALL_CALENDAR = {"API_KEY": "key", "WEBHOOK_SECRET": VALID_SECRET}
    settings.SOCIAL_AUTH_PIPELINE = VALID_PIPELINE
    settings.LOGIN_URL = "/admin/login/"
    return settings


def test_a_valid_configuration_passes_every_check(valid):
    assert recall_messages() == {}
    assert recall_messages(deploy=True) == {}


@pytest.mark.parametrize("api_key", [None, ""])
def test_missing_api_key_is_a_warning_so_migrate_can_run_first(valid, api_key):
    valid.RECALL_CALENDAR = {"API_KEY": api_key, "WEBHOOK_SECRET": VALID_SECRET}
    message = only(recall_messages(), "W001")
    assert message.level == WARNING
    assert "RECALL_CALENDAR['API_KEY']" in message.msg and "--deploy" in message.msg
    assert "Recall dashboard" in message.hint


@pytest.mark.django_db
def test_migrate_runs_before_the_api_key_is_set(valid):
    """The README's order: migrate after INSTALLED_APPS, the key later. migrate runs the checks
    and stops on any error, so a missing key must not be one."""
    valid.RECALL_CALENDAR = {}
    call_command("migrate", skip_checks=False, verbosity=0, interactive=False)


def test_missing_api_key_is_an_error_under_check_deploy(valid):
    valid.RECALL_CALENDAR = {"WEBHOOK_SECRET": VALID_SECRET}
    messages = recall_messages(deploy=True)
    assert set(messages) == {"W001", "E001"}
    assert messages["E001"].level == ERROR
    assert messages["E001"].msg == "RECALL_CALENDAR['API_KEY'] is not set."
    with pytest.raises(SystemCheckError, match=r"recall_calendar\.E001"):
        call_command("check", deploy=True, tags=["recall_calendar"])


def test_missing_webhook_secret_is_a_warning(valid):
    valid.RECALL_CALENDAR = {"API_KEY": "key"}
    message = only(recall_messages(), "W002")
    assert message.level == WARNING
    assert "refuse every delivery" in message.msg
    assert "whsec_" in message.hint


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_",
        "whsec_not base64!",
        "whsec_abc",
        42,
    ],
)
def test_malformed_webhook_secret_is_an_error(valid, secret):
    valid.RECALL_CALENDAR = {"API_KEY": "key", "WEBHOOK_SECRET": secret}
    message = only(recall_messages(), "E003")
    assert message.level == ERROR
    assert "whsec_<base64>" in message.msg
    assert "exactly as the Recall dashboard shows it" in message.hint


def test_each_malformed_secret_of_a_rotation_list_is_named_by_index(valid):
    valid.RECALL_CALENDAR = {"API_KEY": "key", "WEBHOOK_SECRET": [VALID_SECRET, "oops", "bad"]}
    messages = [m for m in run_checks(tags=["recall_calendar"]) if m.id == "recall_calendar.E003"]
    assert [m.msg.split(" ")[0] for m in messages] == [
        "RECALL_CALENDAR['WEBHOOK_SECRET'][1]",
        "RECALL_CALENDAR['WEBHOOK_SECRET'][2]",
    ]


def test_a_rotation_list_of_valid_secrets_passes(valid):
    valid.RECALL_CALENDAR = {"API_KEY": "key", "WEBHOOK_SECRET": [VALID_SECRET, VALID_SECRET]}
    assert recall_messages() == {}


def test_unknown_region_is_an_error(valid):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, "REGION": "eu-west-1"}
    message = only(recall_messages(), "E004")
    assert message.level == ERROR
    assert "'eu-west-1'" in message.msg
    assert "eu-central-1" in message.hint


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1"])
def test_every_recall_region_is_accepted(valid, region):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, "REGION": region}
    assert recall_messages() == {}


def test_base_url_makes_region_irrelevant(valid):
    valid.RECALL_CALENDAR = {
        **valid.RECALL_CALENDAR,
        "REGION": "nowhere",
        "BASE_URL": "http://127.0.0.1:9",
    }
    assert recall_messages() == {}


@pytest.mark.parametrize(
    ("label", "package"),
    [("rest_framework", "djangorestframework"), ("social_django", "social-auth-app-django")],
)
def test_missing_required_app_is_an_error(valid, label, package):
    valid.INSTALLED_APPS = [app for app in valid.INSTALLED_APPS if app != label]
    message = only(recall_messages(), "E005")
    assert message.level == ERROR
    assert f"'{label}'" in message.msg
    assert package in message.hint


def test_customised_pipeline_without_our_step_is_a_warning(valid):
    valid.SOCIAL_AUTH_PIPELINE = tuple(step for step in VALID_PIPELINE if step != PIPELINE_STEP)
    message = only(recall_messages(), "W006")
    assert message.level == WARNING
    assert message.msg.startswith("SOCIAL_AUTH_PIPELINE does not include")
    assert PIPELINE_STEP in message.msg
    assert "load_extra_data" in message.hint


SOCIAL_USER = "social_core.pipeline.social_auth.social_user"
CREATE_USER = "social_core.pipeline.user.create_user"


@pytest.mark.parametrize(
    "pipeline",
    [
        (SOCIAL_USER, CREATE_USER, LOAD_EXTRA_DATA, PIPELINE_STEP),
        (SOCIAL_USER, LOGIN_STEP, CREATE_USER, LOAD_EXTRA_DATA, PIPELINE_STEP),
        (CREATE_USER, LOGIN_STEP, LOAD_EXTRA_DATA, PIPELINE_STEP),
    ],
    ids=["missing", "after social_user", "after create_user"],
)
def test_a_pipeline_that_lets_connect_create_or_log_in_users_is_a_warning(valid, pipeline):
    valid.SOCIAL_AUTH_PIPELINE = pipeline
    message = only(recall_messages(), "W009")
    assert message.level == WARNING
    assert LOGIN_STEP in message.msg
    assert "social_user" in message.hint


def test_the_login_step_before_the_user_steps_passes(valid):
    valid.SOCIAL_AUTH_PIPELINE = (
        LOGIN_STEP,
        SOCIAL_USER,
        CREATE_USER,
        LOAD_EXTRA_DATA,
        PIPELINE_STEP,
    )
    assert recall_messages() == {}


def test_social_auths_default_pipeline_lacks_our_step(valid):
    """No SOCIAL_AUTH_PIPELINE: social-auth runs its default, which cannot connect a calendar."""
    del valid.SOCIAL_AUTH_PIPELINE
    messages = recall_messages()
    assert set(messages) == {"W006"}
    assert "social-auth's default pipeline (SOCIAL_AUTH_PIPELINE is not set)" in (
        messages["W006"].msg
    )


def test_our_step_before_load_extra_data_is_a_warning(valid):
    """load_extra_data after our step would store the refresh token again once Recall has it."""
    steps = [step for step in VALID_PIPELINE if step != PIPELINE_STEP]
    steps.insert(steps.index(LOAD_EXTRA_DATA), PIPELINE_STEP)
    valid.SOCIAL_AUTH_PIPELINE = tuple(steps)
    message = only(recall_messages(), "W010")
    assert message.level == WARNING
    assert "refresh token" in message.msg
    assert message.hint == f"Move it right after {LOAD_EXTRA_DATA!r}."


def test_the_default_pipeline_is_what_social_auth_documents():
    """The W006 test above relies on social-auth's default lacking our step."""
    assert PIPELINE_STEP not in DEFAULT_AUTH_PIPELINE and LOAD_EXTRA_DATA in DEFAULT_AUTH_PIPELINE


@pytest.mark.parametrize("login_url", ["/accounts/login/", "no-such-url-name"])
def test_a_login_url_this_site_does_not_serve_is_a_warning(valid, login_url):
    """Django's default LOGIN_URL is /accounts/login/, which a fresh project does not route."""
    valid.LOGIN_URL = login_url
    message = only(recall_messages(), "W011")
    assert message.level == WARNING
    assert repr(login_url) in message.msg and "404" in message.msg
    assert "LOGIN_URL" in message.hint


@pytest.mark.parametrize(
    "login_url",
    ["/admin/login/", "admin:login", "https://sso.example.com/login", "/admin/login/?x=1"],
)
def test_a_served_or_external_login_url_passes(valid, login_url):
    valid.LOGIN_URL = login_url
    assert recall_messages() == {}


def test_the_webhook_url_not_routed_is_an_error(valid):
    valid.ROOT_URLCONF = __name__
    message = only(recall_messages(), "E012")
    assert message.level == ERROR
    assert "'recall_calendar:webhook'" in message.msg
    assert 'include("django_recall_calendar.urls")' in message.hint


def test_time_zone_support_off_is_an_error(valid):
    """Recall's times are aware UTC datetimes: with USE_TZ = False the database refuses them (SQLite
    raises on every upsert), so every sync and every webhook would fail in production."""
    valid.USE_TZ = False
    message = only(recall_messages(), "E007")
    assert message.level == ERROR
    assert "USE_TZ" in message.msg and "USE_TZ = True" in message.hint


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("SCHEDULING_MODE", "selfmanaged", "SCHEDULING_MODE"),
        ("DEDUPLICATION", "per-meeting", "DEDUPLICATION"),
        ("DEDUPLICATION", "myproject.keys.no_such_function", "DEDUPLICATION"),
        ("DEFAULT_RECORDING_POLICY", "everything", "DEFAULT_RECORDING_POLICY"),
        ("WEBHOOK_HANDOFF_DELAY", -0.005, "WEBHOOK_HANDOFF_DELAY"),
        ("WEBHOOK_HANDOFF_DELAY", "0.005", "WEBHOOK_HANDOFF_DELAY"),
        ("WEBHOOK_HANDOFF_DELAY", True, "WEBHOOK_HANDOFF_DELAY"),
        ("WEBHOOK_HANDOFF_DELAY", float("nan"), "WEBHOOK_HANDOFF_DELAY"),
        ("WEBHOOK_HANDOFF_DELAY", float("inf"), "WEBHOOK_HANDOFF_DELAY"),
    ],
)
def test_a_mistyped_setting_value_is_an_error(valid, key, value, named):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, key: value}
    message = only(recall_messages(), "E008")
    assert message.level == ERROR
    assert f"RECALL_CALENDAR['{named}']" in message.msg and repr(value) in message.msg
    assert "settings reference" in message.hint


@pytest.mark.parametrize("delay", [0, 0.005, 1])
def test_a_handoff_delay_in_seconds_passes(valid, delay):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, "WEBHOOK_HANDOFF_DELAY": delay}
    assert recall_messages() == {}


def test_recall_calendar_not_a_dict_is_one_error_not_a_crash(valid):
    valid.RECALL_CALENDAR = ["API_KEY", "key"]
    message = only(recall_messages(), "E008")
    assert "must be a dict" in message.msg


def test_every_check_id_is_covered_by_this_module():
    """A new check must get a test here: the ids above are all the ids checks.py declares."""
    from pathlib import Path

    import django_recall_calendar.checks as checks

    source = Path(checks.__file__).read_text()
    declared = {part.split('"')[0] for part in source.split('id="recall_calendar.')[1:]}
    assert declared == ALL_IDS


@pytest.mark.parametrize(
    "rates",
    [
        {"event_listings": "60 a minute"},
        {"event_listings": "0/min"},
        {"event_listings": 60},
        {"event_listing": "60/min"},
    ],
)
def test_a_malformed_rate_limits_setting_fails_manage_py_check(valid, rates):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, "RATE_LIMITS": rates}
    message = only(recall_messages(), "E020")
    assert message.level == ERROR
    assert "RATE_LIMITS" in message.msg
    assert "'60/min' or '5/10s'" in message.hint


def test_a_negative_budget_wait_fails_manage_py_check(valid):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, "RATE_LIMIT_TASK_WAIT": -1}
    assert "RATE_LIMIT_TASK_WAIT" in only(recall_messages(), "E020").msg


@pytest.mark.parametrize(
    "key",
    [
        "meeting_url",
        "join_at",
        "webhook_url",
        "metadata",
        "recording_config",  # holds realtime_endpoints
        "recording_config.realtime_endpoints",
        "recording_config.transcript",  # holds the provider and its callback
        "output_media.camera.config",
        "zoom.zak_url",
        "automatic_leave.status_callback",
    ],
)
def test_letting_users_steer_a_bot_is_an_error(valid, key):
    valid.RECALL_CALENDAR = {
        **valid.RECALL_CALENDAR,
        "USER_BOT_CONFIG_KEYS": ("bot_name", key),
    }
    message = only(recall_messages(), "E021")
    assert message.level == ERROR
    assert repr(key) in message.msg and "BOT_CONFIG" in message.hint


@pytest.mark.parametrize("keys", ["bot_name", ["bot_name", 3], [""]])
def test_a_malformed_user_bot_config_keys_setting_is_an_error(valid, keys):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, "USER_BOT_CONFIG_KEYS": keys}
    assert "USER_BOT_CONFIG_KEYS" in only(recall_messages(), "E021").msg


@pytest.mark.parametrize(
    "keys", [(), ("bot_name",), ("bot_name", "chat.on_bot_join.message", "automatic_leave")]
)
def test_harmless_user_bot_config_keys_pass(valid, keys):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, "USER_BOT_CONFIG_KEYS": keys}
    assert recall_messages() == {}
