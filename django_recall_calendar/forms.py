"""Forms of the "my calendars" page."""

from __future__ import annotations

from django import forms

from .models import Calendar
from .policies import POLICY_OPTIONS


class RecordingPolicyForm(forms.ModelForm):
    """The per-calendar choice of which meetings get a bot."""

    class Meta:
        model = Calendar
        fields = list(POLICY_OPTIONS)
