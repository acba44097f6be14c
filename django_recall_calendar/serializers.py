"""Serializers of the REST API: what a front end reads and may change, and nothing more.

Recall's raw objects are never exposed: they are Recall's and may grow, and a front end needs the
derived, stable fields only. Writable fields are listed explicitly: a new model field is read-only.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import bot_configs, bot_status, scheduling
from .models import BotResult, BotStatus, Calendar, CalendarEvent, RecordingPolicy, RecordOverride
from .policies import POLICY_OPTIONS, Rule, clean_keywords


class CalendarSerializer(serializers.ModelSerializer):
    """A connected calendar, its status and its recording policy."""

    email = serializers.CharField(read_only=True, help_text=_("The calendar's address."))
    disconnect_reason = serializers.CharField(
        read_only=True, help_text=_("Why Recall disconnected the calendar, when it said.")
    )
    recording_policy = serializers.ChoiceField(choices=RecordingPolicy.choices, required=False)
    skip_title_keywords = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text=_(
            "Words or phrases: a meeting whose title contains one is not recorded by the policy "
            "(case ignored)."
        ),
    )

    class Meta:
        model = Calendar
        fields = [
            "id",
            "recall_id",
            "platform",
            "email",
            "status",
            "disconnect_reason",
            *POLICY_OPTIONS,
            "last_synced_at",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "recall_id",
            "platform",
            "status",
            "last_synced_at",
            "created_at",
        ]

    def validate_skip_title_keywords(self, value: list[str]) -> list[str]:
        try:
            return clean_keywords(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


BOT_STATES = [
    ("scheduled", _("A bot will join")),
    ("none", _("No bot")),
    ("not_possible", _("No bot can join")),
    ("retrying", _("Recall refused the bot call; it is tried again")),
    ("missed", _("Recall refused the bot call until the meeting started")),
]


class CalendarEventSerializer(serializers.ModelSerializer):
    """A meeting as a front end shows it: times, link, whether a bot joins and why (not), the rule
    that skipped it, and what the bot did."""

    bot_state = serializers.SerializerMethodField()
    bot_state_reason = serializers.SerializerMethodField()
    skip_rule = serializers.SerializerMethodField(
        help_text=_("For a meeting no bot goes to: the rule that skipped it.")
    )
    bot_status = serializers.SerializerMethodField(
        help_text=_("The last status the meeting's bot reported (null before it reports).")
    )
    bot_result = serializers.SerializerMethodField(
        help_text=_("Whether the bot recorded, failed to, or is still at it.")
    )
    bot_status_description = serializers.SerializerMethodField(
        help_text=_('What the bot did, in words: e.g. "Failed to record: the host refused ...".')
    )
    bot_status_at = serializers.SerializerMethodField(
        help_text=_("When Recall says the bot reached its status.")
    )
    attendees_count = serializers.SerializerMethodField()

    class Meta:
        model = CalendarEvent
        fields = [
            "id",
            "recall_id",
            "calendar",
            "title",
            "start_time",
            "end_time",
            "is_all_day",
            "meeting_url",
            "meeting_platform",
            "organizer_email",
            "is_organizer",
            "attendees_count",
            "is_cancelled",
            "is_deleted",
            "bot_state",
            "bot_state_reason",
            "skip_rule",
            "bot_status",
            "bot_result",
            "bot_status_description",
            "bot_status_at",
            "record_override",
        ]
        read_only_fields = fields

    @staticmethod
    def _summary(event: CalendarEvent) -> scheduling.BotSummary:
        """scheduling.bot_summary, computed once per event for the fields that show it."""
        if not hasattr(event, "_api_bot_summary"):
            event._api_bot_summary = scheduling.bot_summary(event)
        return event._api_bot_summary

    @extend_schema_field(serializers.ChoiceField(choices=BOT_STATES))
    def get_bot_state(self, event: CalendarEvent) -> str:
        return self._summary(event).state

    @extend_schema_field(serializers.CharField())
    def get_bot_state_reason(self, event: CalendarEvent) -> str:
        return str(self._summary(event).reason or "")

    @extend_schema_field(serializers.ChoiceField(choices=Rule.choices, allow_null=True))
    def get_skip_rule(self, event: CalendarEvent) -> str | None:
        return self._summary(event).rule or None

    @extend_schema_field(serializers.ChoiceField(choices=BotStatus.choices, allow_null=True))
    def get_bot_status(self, event: CalendarEvent) -> str | None:
        return event.bot_outcome.status if event.bot_outcome else None

    @extend_schema_field(serializers.ChoiceField(choices=BotResult.choices, allow_null=True))
    def get_bot_result(self, event: CalendarEvent) -> str | None:
        return event.bot_outcome.result if event.bot_outcome else None

    @extend_schema_field(serializers.CharField())
    def get_bot_status_description(self, event: CalendarEvent) -> str:
        return bot_status.describe(event.bot_outcome) if event.bot_outcome else ""

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_bot_status_at(self, event: CalendarEvent) -> str | None:
        outcome = event.bot_outcome
        return serializers.DateTimeField().to_representation(outcome.status_at) if outcome else None

    @extend_schema_field(serializers.IntegerField())
    def get_attendees_count(self, event: CalendarEvent) -> int:
        return len(event.attendees or [])


class EventFilterSerializer(serializers.Serializer):
    """The query parameters of ``events/``, validated so a typo answers 400 instead of all rows."""

    upcoming = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text=_("Only events not ended yet.")
    )
    calendar = serializers.PrimaryKeyRelatedField(
        queryset=Calendar.objects.none(),
        required=False,
        help_text=_("Only the events of this calendar (one of yours)."),
    )
    has_bot = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Only events with (true) or without (false) a bot."),
    )
    start_after = serializers.DateTimeField(
        required=False, help_text=_("Only events starting at or after this ISO 8601 time.")
    )
    start_before = serializers.DateTimeField(
        required=False, help_text=_("Only events starting before this ISO 8601 time.")
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:
            self.fields["calendar"].queryset = Calendar.objects.filter(user=user)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # DRF reads an empty query value as "not given", so ``?start_before=`` would silently
        # return every event: refuse it like any other value the document does not allow.
        empty = {
            name: [_("This parameter may not be empty; leave it out instead.")]
            for name in self.fields
            if name in data and data.get(name) == ""
        }
        if empty:
            raise serializers.ValidationError(empty)
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("start_after"), attrs.get("start_before")
        if after and before and after >= before:
            raise serializers.ValidationError(
                {"start_before": [_("start_before must be later than start_after.")]}
            )
        return attrs


class BotRequestSerializer(serializers.Serializer):
    """The body of ``POST events/{id}/bot/``."""

    override = serializers.ChoiceField(
        choices=RecordOverride.choices,
        required=False,
        default=RecordOverride.ALWAYS,
        allow_blank=True,
        help_text=_(
            '"always" (the default) schedules a bot and keeps it whatever the policy says; "never" '
            'removes it and keeps it away; "" follows the calendar\'s recording policy again.'
        ),
    )
    bot_config = serializers.DictField(
        required=False,
        default=dict,
        help_text=_(
            "Recall bot settings for this meeting, merged over the BOT_CONFIG setting and "
            "remembered for later reschedules. Only the keys of the USER_BOT_CONFIG_KEYS setting "
            "(by default bot_name) are accepted; any other is a 400 naming it. A meeting with "
            "settings of its own gets a bot of its own, never changing the bot other attendees' "
            "copies of the meeting share."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["bot_config"] and attrs["override"] != RecordOverride.ALWAYS:
            raise serializers.ValidationError(
                {"bot_config": [_('bot_config is only accepted with override "always".')]}
            )
        problem = bot_configs.user_problem(attrs["bot_config"])
        if problem:
            raise serializers.ValidationError({"bot_config": [problem]})
        return attrs
