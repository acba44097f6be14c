"""The retry policy: how long the client waits, and that every wait is bounded."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.test import override_settings

from django_recall_calendar.client import RecallClient
from django_recall_calendar.retry import RetryPolicy, parse_retry_after

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("Sat, 01 Mar 2025 12:00:10", 10.0),  # no zone: HTTP dates are GMT
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(header, seconds):
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "   ", "soon", "nan", "Mon, 99 Foo 2025"])
def test_unusable_retry_after_is_none(header):
    assert parse_retry_after(header, now=NOW) is None


def test_retry_after_is_capped():
    policy = RetryPolicy(backoff_base=0.01, retry_after_cap=5.0)
    assert policy.delay(0, "3600") == 5.0
    assert 2.0 <= policy.delay(0, "2") <= 2.01


def test_without_retry_after_the_backoff_grows_and_is_capped():
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=8.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        delays = [policy.delay(attempt, "garbage") for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1, "jitter spreads clients that failed together"


@pytest.mark.parametrize(
    "options",
    [{"max_retries": -1}, {"backoff_base": -1.0}, {"backoff_cap": -1.0}, {"retry_after_cap": -1}],
)
def test_negative_settings_are_refused(options):
    with pytest.raises(ValueError, match=">= 0"):
        RetryPolicy(**options)


def test_from_settings_reads_every_client_setting():
    with override_settings(
        RECALL_CALENDAR={
            "API_KEY": "key",
            "REGION": "eu-central-1",
            "TIMEOUT": 3,
            "MAX_RETRIES": 7,
            "RETRY_AFTER_CAP": 9,
            "BACKOFF_BASE": 0.25,
            "BACKOFF_CAP": 4,
        }
    ):
        client = RecallClient.from_settings()
    assert client.base_url == "https://eu-central-1.recall.ai"
    assert client.timeout == 3.0
    assert client.retry == RetryPolicy(
        max_retries=7, backoff_base=0.25, backoff_cap=4.0, retry_after_cap=9.0
    )


def test_from_settings_without_api_key_names_the_setting():
    from django.core.exceptions import ImproperlyConfigured

    with (
        override_settings(RECALL_CALENDAR={"REGION": "us-west-2"}),
        pytest.raises(ImproperlyConfigured, match=r"RECALL_CALENDAR\['API_KEY'\]"),
    ):
        RecallClient.from_settings()


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("", "https://us-east-1.recall.ai"), {}, "API key"),
        (("key", "us-east-1.recall.ai"), {}, "http"),
        (("key", "ftp://recall.ai"), {}, "http"),
        (("key", "https://us-east-1.recall.ai"), {"timeout": 0}, "timeout"),
        (("key", "https://us-east-1.recall.ai"), {"max_retries": -2}, "max_retries"),
    ],
)
def test_bad_client_arguments_are_refused(args, options, message):
    with pytest.raises(ValueError, match=message):
        RecallClient(*args, **options)


def test_repr_hides_the_api_key():
    client = RecallClient("sk-top-secret", "https://us-east-1.recall.ai/")
    assert repr(client) == "<RecallClient base_url='https://us-east-1.recall.ai'>"
    assert "sk-top-secret" not in str(client)
