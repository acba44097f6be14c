"""Signals a host can listen to. Each is sent with ``sender`` set to the model class.

The bot signals are sent once per change a bot reports, not per delivery: a repeated or late
delivery that changes nothing sends nothing. ``events`` lists every meeting the bot serves (one bot
can serve several users' copies of a meeting).
"""

from django.dispatch import Signal

#: A calendar's status became ``connected``. kwargs: ``calendar``.
calendar_connected = Signal()
#: A calendar became ``disconnected`` at Recall, or was disconnected by its owner or staff.
#: kwargs: ``calendar``, ``reason`` (text, may be empty), ``deleted`` (True when removed for good).
calendar_disconnected = Signal()
#: A sync applied events. kwargs: ``calendar``, ``created``, ``updated``, ``deleted``, ``events``.
events_synced = Signal()
#: A bot was scheduled (or rescheduled) for an event. kwargs: ``event``, ``bot_config``.
bot_scheduled = Signal()
#: A bot was removed from an event. kwargs: ``event``.
bot_unscheduled = Signal()
#: A bot reported a new status (Recall's ``bot.*`` webhooks). kwargs: ``outcome`` (the
#: :class:`~.models.BotOutcome`), ``events``, ``status``, ``previous_status`` ("" for the first
#: report), ``description`` (a sentence a person reads).
bot_status_changed = Signal()
#: A bot shut down (``bot.done``): the recording, if any, can be fetched now. kwargs: ``outcome``,
#: ``events``, ``recorded`` (whether the bot recorded at all).
bot_done = Signal()
#: A bot failed to record (could not join, was refused, or left without recording). kwargs:
#: ``outcome``, ``events``, ``reason`` (a sentence a person reads, e.g. "Failed to record: nobody
#: let the bot in from the waiting room in time").
bot_failed = Signal()
