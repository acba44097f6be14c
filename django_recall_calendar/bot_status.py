"""What a bot's status means: its rank in a bot's life, its result, and sentences people read.

Pure rules, no database: :mod:`.outcomes` applies them to Recall's webhooks, and the admin, the REST
API and the pages describe a bot with them.

Recall's ``sub_code`` is machine readable (``bot.call_ended``, ``bot.fatal`` and
``bot.recording_permission_denied`` carry one; see webhooks.json). :data:`SUB_CODE_SENTENCES`
turns the ones Recall documents into sentences; an unknown one is shown as its words, so a code
Recall adds later still reads sensibly.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import formats, timezone

from .models import BotOutcome, BotResult, BotStatus

#: A bot moves forward through these ranks; a delivery of a lower rank than the bot has reached is
#: late (delivery order is not guaranteed) and never moves it back. Allowed and refused recording
#: share a rank: both answer the same question. ``fatal`` outranks ``done``: a failure is never
#: hidden by a ``done`` that follows it.
RANKS = {
    BotStatus.JOINING_CALL: 1,
    BotStatus.IN_WAITING_ROOM: 2,
    BotStatus.IN_CALL_NOT_RECORDING: 3,
    BotStatus.RECORDING_PERMISSION_ALLOWED: 4,
    BotStatus.RECORDING_PERMISSION_DENIED: 4,
    BotStatus.IN_CALL_RECORDING: 5,
    BotStatus.CALL_ENDED: 6,
    BotStatus.DONE: 7,
    BotStatus.FATAL: 8,
}

#: Statuses after which the bot records nothing more.
FINISHED = frozenset({BotStatus.CALL_ENDED, BotStatus.DONE, BotStatus.FATAL})
#: Statuses that end a bot: only then is "it did not record" known for sure.
ENDINGS = frozenset({BotStatus.DONE, BotStatus.FATAL})

#: Statuses that explain a failure, strongest first: the one kept as the reason whatever the
#: order the deliveries came in (a refused recording explains more than the call that ended).
FAILURE_STRENGTH = {
    BotStatus.FATAL: 3,
    BotStatus.RECORDING_PERMISSION_DENIED: 2,
    BotStatus.CALL_ENDED: 1,
}

STATUS_SENTENCES = {
    BotStatus.JOINING_CALL: "the bot is joining the meeting",
    BotStatus.IN_WAITING_ROOM: "the bot is waiting to be let in",
    BotStatus.IN_CALL_NOT_RECORDING: "the bot is in the meeting, not recording yet",
    BotStatus.RECORDING_PERMISSION_ALLOWED: "the bot was allowed to record",
    BotStatus.RECORDING_PERMISSION_DENIED: "the bot was not allowed to record",
    BotStatus.IN_CALL_RECORDING: "the bot is recording",
    BotStatus.CALL_ENDED: "the bot left the meeting",
    BotStatus.DONE: "the bot is done",
    BotStatus.FATAL: "the bot could not join",
}

#: Recall's sub-codes, as a person would say them.
SUB_CODE_SENTENCES = {
    # bot.call_ended: why the bot left.
    "meeting_ended_by_host": "the host ended the meeting",
    "call_ended_by_host": "the host ended the meeting",
    "call_ended_by_platform_idle": "the meeting platform closed the idle meeting",
    "call_ended_by_platform_max_length": "the meeting reached the platform's maximum length",
    "call_ended_by_platform_waiting_room_timeout": (
        "the meeting platform sent the bot away after it waited too long to be let in"
    ),
    "timeout_exceeded_waiting_room": "nobody let the bot in from the waiting room in time",
    "timeout_exceeded_noone_joined": "nobody else joined the meeting",
    "timeout_exceeded_everyone_left": "everyone else had left the meeting",
    "timeout_exceeded_silence_detected": "the meeting stayed silent too long",
    "timeout_exceeded_only_bots_detected_using_participant_events": (
        "only other bots were in the meeting"
    ),
    "timeout_exceeded_in_call_not_recording": "the bot was never allowed to record in time",
    "timeout_exceeded_recording_permission_denied": "recording stayed refused until the bot left",
    "timeout_exceeded_in_call_recording": "the recording reached its maximum length",
    "bot_kicked_from_call": "someone removed the bot from the meeting",
    "bot_kicked_from_waiting_room": "someone turned the bot away at the waiting room",
    "bot_received_leave_call": "the bot was asked to leave",
    # bot.fatal: why the bot could not join.
    "invalid_meeting_url": "the meeting link is not valid",
    "meeting_not_found": "the meeting was not found",
    "meeting_not_started": "the meeting had not started",
    "meeting_link_expired": "the meeting link has expired",
    "meeting_link_invalid": "the meeting link is not valid",
    "meeting_password_incorrect": "the meeting password is wrong",
    "meeting_locked": "the meeting is locked",
    "meeting_full": "the meeting is full",
    "meeting_requires_registration": "the meeting requires registration",
    "meeting_requires_sign_in": "the meeting admits signed-in users only",
    "bot_errored": "the bot hit an error at Recall",
    # bot.recording_permission_denied: why the bot may not record.
    "permission_denied_by_host": "the host refused the recording",
    "zoom_local_recording_disabled": "recording is turned off in the host's Zoom settings",
    "zoom_local_recording_request_denied_by_host": "the host refused the recording",
    "zoom_local_recording_request_timeout": "the host did not answer the request to record",
    "zoom_local_recording_grant_revoked": "the host took back the permission to record",
    "zoom_host_not_present": "the host was not there to allow the recording",
}


def rank(status: str) -> int:
    """The place of ``status`` in a bot's life (0 for a status this app does not know)."""
    return RANKS.get(status, 0)


def is_newer(status: str, at: datetime, current: str, current_at: datetime) -> bool:
    """Whether a delivery of ``status`` at ``at`` moves a bot now at ``current`` forward: a higher
    rank, or the same rank reported later (e.g. a second waiting room)."""
    return (rank(status), at) > (rank(current), current_at)


def sub_code_sentence(sub_code: str) -> str:
    """``sub_code`` as a person would say it; an unknown one as its words."""
    if not sub_code:
        return ""
    return SUB_CODE_SENTENCES.get(sub_code, sub_code.replace("_", " ").strip())


def result(status: str, recorded: bool) -> str:
    """The :class:`BotResult` of a bot at ``status`` that did (not) record: a bot that never
    recorded fails when it ends (until then a late "recording" may still be on its way)."""
    if recorded:
        return BotResult.RECORDED
    if status in ENDINGS:
        return BotResult.FAILED
    return BotResult.IN_PROGRESS


def describe(outcome: BotOutcome, *, with_time: bool = False) -> str:
    """One sentence for a bot: where it is, or why it failed (and when, in the viewer's zone)."""
    status, sub_code = outcome.status, outcome.sub_code
    if outcome.result == BotResult.FAILED:
        why = sub_code_sentence(outcome.failure_sub_code) or STATUS_SENTENCES.get(
            outcome.failure_status, ""
        )
        sentence = f"failed to record: {why}" if why else "failed to record"
    elif outcome.result == BotResult.RECORDED and status in FINISHED:
        sentence = "recorded"
        if status == BotStatus.DONE:
            sentence += ", the recording is ready"
        elif sub_code:
            sentence += f"; the bot left: {sub_code_sentence(sub_code)}"
    else:
        sentence = STATUS_SENTENCES.get(status, status.replace("_", " "))
        if sub_code:
            sentence += f": {sub_code_sentence(sub_code)}"
    if with_time:
        sentence += f" ({format_local(outcome.status_at)})"
    return sentence[:1].upper() + sentence[1:]


def format_local(moment: datetime, now: datetime | None = None) -> str:
    """``moment`` in the current (the viewer's) time zone, zone named: "14:00 CEST" today, else
    with its day ("Tue 3 Jun, 14:00 CEST")."""
    local = timezone.localtime(moment)
    today = timezone.localdate(now or timezone.now())
    shape = "H:i" if local.date() == today else "D j M, H:i"
    return f"{formats.date_format(local, shape)} {local.tzname()}"
