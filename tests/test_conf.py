"""The app's settings: defaults, call-time reads, regions, and errors that name the missing key."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_recall_calendar import conf


def test_defaults_apply_to_every_key_the_host_leaves_out(settings):
    settings.RECALL_CALENDAR = {"API_KEY": "key"}
    assert conf.get("REGION") == "us-east-1"
    assert conf.get("TIMEOUT") == 10.0
    assert conf.get("MAX_RETRIES") == 4
    assert conf.get("RETRY_AFTER_CAP") == 60.0
    assert conf.get("BACKOFF_BASE") == 0.5
    assert conf.get("BACKOFF_CAP") == 30.0
    assert conf.get("DEDUPLICATION") == "meeting"
    assert conf.get("DEFAULT_RECORDING_POLICY") == "off"
    assert conf.get("BOT_CONFIG") == {}
    assert conf.get("WEBHOOK_SECRET") is None
    assert conf.base_url() == "https://us-east-1.recall.ai"


def test_an_absent_setting_means_all_defaults():
    with override_settings():
        from django.conf import settings

        del settings.RECALL_CALENDAR
        assert conf.user_settings() == {}
        assert conf.get("TIMEOUT") == conf.DEFAULTS["TIMEOUT"]


def test_settings_are_read_at_call_time():
    with override_settings(RECALL_CALENDAR={"API_KEY": "first", "TIMEOUT": 3}):
        assert conf.get("API_KEY") == "first"
        assert conf.get("TIMEOUT") == 3
    with override_settings(RECALL_CALENDAR={"API_KEY": "second"}):
        assert conf.get("API_KEY") == "second"
        assert conf.get("TIMEOUT") == 10.0


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("us-east-1", "https://us-east-1.recall.ai"),
        ("us-west-2", "https://us-west-2.recall.ai"),
        ("eu-central-1", "https://eu-central-1.recall.ai"),
        ("ap-northeast-1", "https://ap-northeast-1.recall.ai"),
    ],
)
def test_region_selects_its_base_url(settings, region, url):
    settings.RECALL_CALENDAR = {"API_KEY": "key", "REGION": region}
    assert conf.base_url() == url


def test_base_url_overrides_region_and_loses_its_trailing_slash(settings):
    settings.RECALL_CALENDAR = {
        "API_KEY": "key",
        "REGION": "eu-central-1",
        "BASE_URL": "http://127.0.0.1:8001/",
    }
    assert conf.base_url() == "http://127.0.0.1:8001"


def test_unknown_region_names_the_setting_and_the_known_regions(settings):
    settings.RECALL_CALENDAR = {"API_KEY": "key", "REGION": "mars-1"}
    with pytest.raises(ImproperlyConfigured) as excinfo:
        conf.base_url()
    message = str(excinfo.value)
    assert "RECALL_CALENDAR['REGION']" in message
    assert "'mars-1'" in message
    assert "eu-central-1" in message


@pytest.mark.parametrize("value", [{}, {"API_KEY": ""}, {"API_KEY": None}])
def test_missing_api_key_names_the_exact_key(settings, value):
    settings.RECALL_CALENDAR = value
    with pytest.raises(ImproperlyConfigured, match=r"RECALL_CALENDAR\['API_KEY'\] is not set"):
        conf.get("API_KEY")


def test_unknown_key_is_a_programming_error(settings):
    with pytest.raises(KeyError, match="API_KEYS"):
        conf.get("API_KEYS")


def test_a_setting_that_is_not_a_dict_is_refused(settings):
    settings.RECALL_CALENDAR = "key"
    with pytest.raises(ImproperlyConfigured, match="RECALL_CALENDAR must be a dict, not str"):
        conf.get("TIMEOUT")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("", []),
        ("whsec_one", ["whsec_one"]),
        (["whsec_new", "whsec_old"], ["whsec_new", "whsec_old"]),
        (("whsec_a",), ["whsec_a"]),
    ],
)
def test_webhook_secrets_is_always_a_list(settings, value, expected):
    settings.RECALL_CALENDAR = {"API_KEY": "key", "WEBHOOK_SECRET": value}
    assert conf.webhook_secrets() == expected


def test_platform_for_backend_maps_the_two_providers_only(settings):
    settings.RECALL_CALENDAR = {"API_KEY": "key"}
    assert conf.platform_for_backend("google-oauth2") == "google_calendar"
    assert conf.platform_for_backend("microsoft-graph") == "microsoft_outlook"
    assert conf.platform_for_backend("github") is None


def test_platforms_and_recording_policy_can_be_customised(settings):
    settings.RECALL_CALENDAR = {
        "API_KEY": "key",
        "PLATFORMS": {"my-google": "google_calendar"},
        "DEFAULT_RECORDING_POLICY": "all",
    }
    assert conf.platform_for_backend("my-google") == "google_calendar"
    assert conf.platform_for_backend("google-oauth2") is None
    assert conf.default_recording_policy() == "all"


def test_claim_timeouts_are_durations_in_seconds(settings):
    settings.RECALL_CALENDAR = {"API_KEY": "key", "SELF_MANAGED_CLAIM_TIMEOUT": 0.5}
    assert conf.duration("WEBHOOK_CLAIM_TIMEOUT") == timedelta(minutes=15)
    assert conf.duration("SELF_MANAGED_CLAIM_TIMEOUT") == timedelta(milliseconds=500)


@pytest.mark.parametrize("value", ["900", -1, None, True, [60], float("nan"), float("inf")])
def test_a_duration_that_is_not_seconds_names_the_setting(settings, value):
    settings.RECALL_CALENDAR = {"API_KEY": "key", "WEBHOOK_CLAIM_TIMEOUT": value}
    with pytest.raises(ImproperlyConfigured, match=r"\['WEBHOOK_CLAIM_TIMEOUT'\].*seconds"):
        conf.duration("WEBHOOK_CLAIM_TIMEOUT")
