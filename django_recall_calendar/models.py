"""The local mirror of Recall's calendars and events, and the record of every webhook delivery.

Recall's ids are kept apart from our primary keys (``recall_id``), and each Recall object is kept
whole in ``raw`` (less its secrets) so that a field we do not model yet is never lost.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import conf
from .status_changes import disconnection_details


class Platform(models.TextChoices):
    GOOGLE_CALENDAR = "google_calendar", _("Google Calendar")
    MICROSOFT_OUTLOOK = "microsoft_outlook", _("Microsoft Outlook")


class CalendarStatus(models.TextChoices):
    CONNECTING = "connecting", _("Connecting")
    CONNECTED = "connected", _("Connected")
    DISCONNECTED = "disconnected", _("Disconnected")
    #: Recall answered 404: the calendar is gone there (deleted elsewhere, or another region).
    MISSING = "missing", _("Missing at Recall")


class RecordingPolicy(models.TextChoices):
    OFF = "off", _("Record nothing")
    ALL = "all", _("All meetings with a meeting link")
    ORGANIZER = "organizer", _("Only meetings I organize")
    EXTERNAL = "external", _("Only meetings with someone outside my domain")
    ACCEPTED = "accepted", _("Only meetings I accepted")


class RecordOverride(models.TextChoices):
    DEFAULT = "", _("Follow the calendar's policy")
    ALWAYS = "always", _("Always record")
    NEVER = "never", _("Never record")


class Sensitivity(models.TextChoices):
    """Google's ``visibility`` and Microsoft's ``sensitivity``, where they keep an event private."""

    NORMAL = "", _("Normal")
    PRIVATE = "private", _("Private")
    CONFIDENTIAL = "confidential", _("Confidential")


class EventKind(models.TextChoices):
    """Google's ``eventType`` where it marks a block of time that is not a meeting."""

    MEETING = "", _("Meeting")
    FOCUS_TIME = "focus_time", _("Focus time")
    OUT_OF_OFFICE = "out_of_office", _("Out of office")
    WORKING_LOCATION = "working_location", _("Working location")


class Calendar(models.Model):
    """A calendar connected at Recall: the primary calendar of one OAuth account of one user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="recall_calendars",
        verbose_name=_("user"),
    )
    social_auth = models.ForeignKey(
        "social_django.UserSocialAuth",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recall_calendars",
        verbose_name=_("social-auth account"),
        help_text=_("The OAuth account whose refresh token Recall holds."),
    )
    recall_id = models.UUIDField(_("Recall id"), unique=True)
    platform = models.CharField(_("platform"), max_length=32, choices=Platform.choices)
    oauth_email = models.CharField(_("OAuth account email"), max_length=254, blank=True)
    platform_email = models.CharField(_("calendar email"), max_length=254, blank=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=CalendarStatus.choices,
        default=CalendarStatus.CONNECTING,
    )
    status_changes = models.JSONField(_("status changes"), default=list, blank=True)
    raw = models.JSONField(
        _("Recall object"),
        default=dict,
        blank=True,
        help_text=_("Recall's calendar object, without the OAuth client secret and refresh token."),
    )
    recording_policy = models.CharField(
        _("recording policy"),
        max_length=16,
        choices=RecordingPolicy.choices,
        default=conf.default_recording_policy,
    )
    skip_declined = models.BooleanField(
        _("skip declined meetings"),
        default=True,
        help_text=_("Never record a meeting the calendar's owner declined."),
    )
    min_attendees = models.PositiveSmallIntegerField(
        _("minimum attendees"),
        default=0,
        help_text=_("Record only meetings with at least this many attendees (0: any)."),
    )
    skip_title_keywords = models.JSONField(
        _("skip titles with"),
        default=conf.default_skip_title_keywords,
        blank=True,
        help_text=_(
            "Words or phrases: a meeting whose title contains one is not recorded by the policy "
            "(case does not matter)."
        ),
    )
    series_overrides = models.JSONField(
        _("recurring series overrides"),
        default=dict,
        blank=True,
        help_text=_('Maps a recurring series id to "always" or "never".'),
    )
    events_synced_until = models.DateTimeField(
        _("events synced until"),
        null=True,
        blank=True,
        help_text=_("Watermark: the newest Recall updated_at whose page is fully applied."),
    )
    last_synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("calendar")
        verbose_name_plural = _("calendars")
        ordering = ["user_id", "platform", "platform_email"]
        indexes = [
            models.Index(fields=["user", "platform"], name="recall_cal_user_platform"),
            models.Index(fields=["status"], name="recall_cal_status"),
        ]
        constraints = [
            # One calendar per OAuth account: two racing consent callbacks cannot both keep one
            # (the loser's Recall calendar is deleted again by calendars.connect_calendar_for).
            models.UniqueConstraint(
                fields=["social_auth"],
                condition=Q(social_auth__isnull=False),
                name="recall_cal_one_per_account",
            ),
        ]

    def __str__(self) -> str:
        email = self.platform_email or self.oauth_email or str(self.recall_id)
        return f"{self.get_platform_display()}: {email}"

    @property
    def email(self) -> str:
        """The best known address of the calendar (Recall's, else the OAuth account's)."""
        return self.platform_email or self.oauth_email

    @property
    def is_disconnected(self) -> bool:
        return self.status in (CalendarStatus.DISCONNECTED, CalendarStatus.MISSING)

    @property
    def disconnect_reason(self) -> str:
        """What Recall said about the latest disconnection, when it said anything."""
        if not self.is_disconnected:
            return ""
        if self.status == CalendarStatus.MISSING:
            return str(_("Recall no longer knows this calendar."))
        return disconnection_details(self.status_changes)


class CalendarEventQuerySet(models.QuerySet):
    def upcoming(self, now=None) -> CalendarEventQuerySet:
        """Events not deleted whose end lies in the future."""
        return self.filter(is_deleted=False, end_time__gt=now or timezone.now())

    def for_user(self, user) -> CalendarEventQuerySet:
        return self.filter(calendar__user=user)


class CalendarEvent(models.Model):
    """A calendar event as Recall last reported it, with fields derived from the payload."""

    calendar = models.ForeignKey(
        Calendar, on_delete=models.CASCADE, related_name="events", verbose_name=_("calendar")
    )
    recall_id = models.UUIDField(_("Recall id"), unique=True)
    start_time = models.DateTimeField(_("start"))
    end_time = models.DateTimeField(_("end"))
    # Null mirrors Recall: "no supported meeting link" differs from an empty string.
    meeting_url = models.TextField(_("meeting URL"), null=True, blank=True)  # noqa: DJ001
    meeting_platform = models.CharField(  # noqa: DJ001
        _("meeting platform"), max_length=32, null=True, blank=True
    )
    platform = models.CharField(_("platform"), max_length=32, choices=Platform.choices)
    platform_id = models.CharField(_("provider event id"), max_length=1024, blank=True)
    ical_uid = models.CharField(_("iCal UID"), max_length=1024, blank=True)
    is_deleted = models.BooleanField(_("deleted"), default=False)
    bots = models.JSONField(_("bots"), default=list, blank=True)
    raw = models.JSONField(_("provider payload"), default=dict, blank=True)
    recall_created_at = models.DateTimeField(_("created at Recall"), null=True, blank=True)
    recall_updated_at = models.DateTimeField(_("updated at Recall"), null=True, blank=True)

    # Derived from ``raw`` for Google and Microsoft payloads alike (see event_fields.derive_fields).
    title = models.CharField(_("title"), max_length=1024, blank=True)
    organizer_email = models.CharField(_("organizer email"), max_length=254, blank=True)
    attendees = models.JSONField(
        _("attendees"), default=list, blank=True, help_text=_('[{"email": ..., "response": ...}]')
    )
    is_organizer = models.BooleanField(_("organized by the calendar's owner"), default=False)
    is_cancelled = models.BooleanField(_("cancelled"), default=False)
    recurring_event_id = models.CharField(_("recurring series id"), max_length=1024, blank=True)
    is_all_day = models.BooleanField(_("all day"), default=False)
    sensitivity = models.CharField(
        _("sensitivity"), max_length=16, choices=Sensitivity.choices, default="", blank=True
    )
    kind = models.CharField(
        _("kind"), max_length=24, choices=EventKind.choices, default="", blank=True
    )

    #: The bot that last reported on this meeting (several events share one bot).
    bot_outcome = models.ForeignKey(
        "BotOutcome",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("bot outcome"),
    )

    record_override = models.CharField(
        _("recording override"),
        max_length=8,
        choices=RecordOverride.choices,
        default=RecordOverride.DEFAULT,
        blank=True,
    )
    bot_config = models.JSONField(
        _("bot config"),
        default=dict,
        blank=True,
        help_text=_("Per-meeting bot config, merged over the BOT_CONFIG setting when scheduling."),
    )
    # A bot call Recall refused after the client's retries (429, 507, 5xx): kept, not dropped.
    bot_failure = models.TextField(
        _("bot call failure"),
        blank=True,
        default="",
        db_default="",  # the sync's hand-written page upsert names only the columns it mirrors
        help_text=_("Why Recall last refused this meeting's bot call; empty once it succeeds."),
    )
    bot_retry_at = models.DateTimeField(
        _("bot call retry at"),
        null=True,
        blank=True,
        help_text=_("When the refused bot call is tried again; empty when the meeting was missed."),
    )

    objects = CalendarEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("calendar event")
        verbose_name_plural = _("calendar events")
        ordering = ["start_time", "id"]
        indexes = [
            models.Index(fields=["calendar", "start_time"], name="recall_evt_cal_start"),
            models.Index(fields=["start_time"], name="recall_evt_start"),
            models.Index(fields=["end_time"], name="recall_evt_end", condition=Q(is_deleted=False)),
            models.Index(fields=["calendar", "recurring_event_id"], name="recall_evt_series"),
            models.Index(fields=["ical_uid"], name="recall_evt_ical_uid"),
            models.Index(
                fields=["bot_retry_at"],
                name="recall_evt_bot_retry",
                condition=Q(bot_retry_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gte=models.F("start_time")), name="recall_evt_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title or _('(no title)')} @ {self.start_time:%Y-%m-%d %H:%M}"

    @property
    def duration(self):
        return self.end_time - self.start_time


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSING = "processing", _("Processing")
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One verified webhook delivery from Recall, stored before it is acknowledged."""

    message_id = models.CharField(_("message id"), max_length=255, unique=True)
    event_type = models.CharField(_("event type"), max_length=100, db_index=True)
    payload = models.JSONField(_("payload"))
    calendar = models.ForeignKey(
        Calendar,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_deliveries",
        verbose_name=_("calendar"),
    )
    calendar_recall_id = models.CharField(
        _("calendar Recall id"), max_length=64, blank=True, db_index=True
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.RECEIVED,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    processed_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="coalesced",
        verbose_name=_("processed by"),
        help_text=_("The delivery whose sync also covered this one (coalesced burst)."),
    )

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="recall_whd_status_next"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class SelfManagedBot(models.Model):
    """A bot created through ``/api/v1/bot/`` in self-managed mode, one per deduplication key.

    The unique key is claimed here before Recall is called, so concurrent syncs never create two
    bots for one meeting.
    """

    deduplication_key = models.CharField(_("deduplication key"), max_length=2000, unique=True)
    recall_bot_id = models.UUIDField(_("Recall bot id"), null=True, blank=True, db_index=True)
    meeting_url = models.TextField(_("meeting URL"))
    join_at = models.DateTimeField(_("join at"))
    events = models.ManyToManyField(CalendarEvent, related_name="self_managed_bots", blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("self-managed bot")
        verbose_name_plural = _("self-managed bots")
        ordering = ["join_at"]

    def __str__(self) -> str:
        return f"{self.deduplication_key} -> {self.recall_bot_id or _('(creating)')}"


class BotStatus(models.TextChoices):
    """The statuses of Recall's bot webhooks (``bot.<status>``), in the order a bot moves."""

    JOINING_CALL = "joining_call", _("Joining")
    IN_WAITING_ROOM = "in_waiting_room", _("In the waiting room")
    IN_CALL_NOT_RECORDING = "in_call_not_recording", _("In the meeting, not recording")
    RECORDING_PERMISSION_ALLOWED = "recording_permission_allowed", _("Allowed to record")
    RECORDING_PERMISSION_DENIED = "recording_permission_denied", _("Recording refused")
    IN_CALL_RECORDING = "in_call_recording", _("Recording")
    CALL_ENDED = "call_ended", _("Left the meeting")
    DONE = "done", _("Done")
    FATAL = "fatal", _("Failed")


class BotResult(models.TextChoices):
    """What a bot achieved so far, for filters and counts."""

    IN_PROGRESS = "in_progress", _("In progress")
    RECORDED = "recorded", _("Recorded")
    FAILED = "failed", _("Failed to record")


class BotOutcome(models.Model):
    """What Recall's bot webhooks told about one bot, whichever meetings it serves.

    One row per Recall bot, not per event: a bot shared by several users' copies of a meeting
    reports once, and every event that bot serves points here (``CalendarEvent.bot_outcome``).
    """

    recall_bot_id = models.UUIDField(_("Recall bot id"), unique=True)
    status = models.CharField(_("status"), max_length=32, choices=BotStatus.choices)
    sub_code = models.CharField(_("sub-code"), max_length=100, blank=True)
    status_at = models.DateTimeField(_("status time"))
    first_status_at = models.DateTimeField(
        _("first status time"), help_text=_("The earliest status time reported: when it started.")
    )
    recorded = models.BooleanField(
        _("recorded"), default=False, help_text=_("The bot reported recording at some point.")
    )
    failure_status = models.CharField(
        _("failure status"), max_length=32, choices=BotStatus.choices, blank=True
    )
    failure_sub_code = models.CharField(_("failure sub-code"), max_length=100, blank=True)
    result = models.CharField(
        _("result"),
        max_length=16,
        choices=BotResult.choices,
        default=BotResult.IN_PROGRESS,
        db_index=True,
    )
    history = models.JSONField(
        _("history"),
        default=list,
        blank=True,
        help_text=_('Every status received, in event time order: [{"status", "sub_code", "at"}].'),
    )
    metadata = models.JSONField(_("bot metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("bot outcome")
        verbose_name_plural = _("bot outcomes")
        ordering = ["-first_status_at", "-id"]

    def __str__(self) -> str:
        return f"{self.recall_bot_id}: {self.get_status_display()}"


class BudgetCounter(models.Model):
    """A counter of the shared Recall budget kept in the database (``RATE_LIMIT_STORAGE`` is
    ``database://``); its row is also the lock that serialises takes from one bucket."""

    key = models.CharField(_("key"), max_length=200, primary_key=True)
    value = models.BigIntegerField(_("value"), default=0)
    expires_at = models.FloatField(_("expires at (Unix time)"), default=0)

    class Meta:
        verbose_name = _("budget counter")
        verbose_name_plural = _("budget counters")

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


class BudgetEntry(models.Model):
    """One call in a bucket's moving window (database store of the shared Recall budget)."""

    key = models.CharField(_("key"), max_length=200)
    at = models.FloatField(_("at (Unix time)"))

    class Meta:
        verbose_name = _("budget entry")
        verbose_name_plural = _("budget entries")
        indexes = [models.Index(fields=["key", "at"], name="recall_budget_key_at")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.at}"


class Lease(models.Model):
    """A named lease one worker holds at a time (the workspace sweep, the deferred bots' drain).

    Taken by a conditional UPDATE on a free or stale row, so it works across processes and
    machines. Stale means ``taken_at`` is older than the time to live the *taker* uses (the
    ``WEBHOOK_CLAIM_TIMEOUT`` it is configured with), as for a claimed delivery: a holder that
    died frees it then, whatever the dead process was configured with.
    """

    name = models.CharField(_("name"), max_length=64, primary_key=True)
    holder = models.CharField(_("holder"), max_length=64, blank=True)
    taken_at = models.DateTimeField(_("taken or renewed at"))

    class Meta:
        verbose_name = _("lease")
        verbose_name_plural = _("leases")

    def __str__(self) -> str:
        return f"{self.name} ({self.holder or 'free'})"


class MeetingOverview(CalendarEvent):
    """The admin's "bots at a glance" page: a proxy so the admin index links to it (no table)."""

    class Meta:
        proxy = True
        verbose_name = _("bot overview")
        verbose_name_plural = _("bot overview (last and next two weeks)")
