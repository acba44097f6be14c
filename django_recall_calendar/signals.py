"""Signals a host can listen to. Each is sent with ``sender`` set to the model class."""

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
