"""Forms of the "my calendars" page, and the title keywords field the admin shares."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from . import policies
from .models import Calendar


def clean_keywords(words: list[Any]) -> list[str]:
    """:func:`.policies.clean_keywords`, its complaint as a form error."""
    try:
        return policies.clean_keywords(words)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


class KeywordsField(forms.CharField):
    """A list of keywords edited as one line of comma-separated words."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("encoder", None)
        kwargs.pop("decoder", None)
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", _("Comma-separated, e.g. “private, interview, 1:1”."))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(word) for word in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            return clean_keywords(list(value))
        return clean_keywords((super().to_python(value) or "").split(","))

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return list(initial or []) != self.to_python(data)
        except forms.ValidationError:
            return True


class RecordingPolicyForm(forms.ModelForm):
    """The per-calendar choice of which meetings get a bot."""

    class Meta:
        model = Calendar
        fields = list(policies.POLICY_OPTIONS)
        field_classes = {"skip_title_keywords": KeywordsField}
