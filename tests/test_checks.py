"""System checks: each one fires, with its id and hint, exactly when the configuration is wrong."""

import pytest
from django.core.checks import ERROR, WARNING, run_checks

from django_recall_calendar.checks import PIPELINE_STEP

VALID_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALL_IDS = {"E001", "W002", "E003", "E004", "E005", "W006", "E007", "E008"}


def recall_messages():
    """Our messages from a real ``manage.py check`` run, keyed by their short id."""
    return {
        message.id.removeprefix("recall_calendar."): message
        for message in run_checks(tags=["recall_calendar"])
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
    return settings


def test_a_valid_configuration_passes_every_check(valid):
    valid.SOCIAL_AUTH_PIPELINE = (
        "social_core.pipeline.social_auth.load_extra_data",
        PIPELINE_STEP,
    )
    assert recall_messages() == {}


@pytest.mark.parametrize("api_key", [None, ""])
def test_missing_api_key_is_an_error(valid, api_key):
    valid.RECALL_CALENDAR = {"API_KEY": api_key, "WEBHOOK_SECRET": VALID_SECRET}
    message = only(recall_messages(), "E001")
    assert message.level == ERROR
    assert "RECALL_CALENDAR['API_KEY']" in message.msg
    assert "Recall dashboard" in message.hint


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
    valid.SOCIAL_AUTH_PIPELINE = ("social_core.pipeline.social_auth.load_extra_data",)
    message = only(recall_messages(), "W006")
    assert message.level == WARNING
    assert PIPELINE_STEP in message.msg
    assert "load_extra_data" in message.hint


def test_default_pipeline_is_not_checked(valid):
    del valid.SOCIAL_AUTH_PIPELINE
    assert recall_messages() == {}


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
    ],
)
def test_a_mistyped_setting_value_is_an_error(valid, key, value, named):
    valid.RECALL_CALENDAR = {**valid.RECALL_CALENDAR, key: value}
    message = only(recall_messages(), "E008")
    assert message.level == ERROR
    assert f"RECALL_CALENDAR['{named}']" in message.msg and repr(value) in message.msg
    assert "settings reference" in message.hint


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
