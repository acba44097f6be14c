"""Running an admin action over many objects and telling staff exactly what happened.

Every bulk action goes through :func:`run_each`: one object's failure is recorded and the loop goes
on, so a single bad meeting never hides what happened to the others; :func:`report` then turns the
tally into at most three messages (succeeded / skipped and why / failed and why), reasons grouped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from ..exceptions import RecallError

logger = logging.getLogger(__name__)


#: Per-object lines in a success message beyond which the rest is summarised as "(and N more)".
MAX_DETAILS = 10


class WithoutBulkDelete:
    """A ModelAdmin mixin removing "delete selected" where a bulk delete would mislead.

    An event deleted here is not deleted at Recall, so the next sync brings it back. Calendars are
    removed in bulk with "Disconnect…", which reports each calendar's outcome at Recall.
    """

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict:
        # Django 6.1 passes action_location (and warns if it cannot); 5.2 knows no such argument.
        extra = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **extra)  # type: ignore[misc]
        actions.pop("delete_selected", None)
        return actions


class Skipped(Exception):
    """Raised by an action's operation to leave an object alone on purpose; the text says why."""


@dataclass
class Outcome:
    """The tally of one bulk action."""

    succeeded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)


def run_each(
    objects: Iterable[Any],
    operation: Callable[[Any], object],
    *,
    skip_errors: tuple[type[Exception], ...] = (),
    shown_errors: tuple[type[Exception], ...] = (),
) -> Outcome:
    """Apply ``operation`` to every object; exceptions of ``skip_errors`` count as skips.

    An operation may return a short text (e.g. a sync's counts) kept in ``details``. Recall errors
    carry a message built from Recall's answer only (see exceptions.py), and ``shown_errors`` are
    the domain's own messages written for users; any other exception is logged with its traceback
    and shown by type name only, because its text could hold anything.
    """
    outcome = Outcome()
    for obj in objects:
        try:
            detail = operation(obj)
        except (Skipped, *skip_errors) as exc:
            outcome.skipped[str(getattr(exc, "reason", None) or exc)] += 1
        except (RecallError, *shown_errors) as exc:
            outcome.failed[_reason(exc)] += 1
        except Exception as exc:
            logger.exception("Admin action failed for %r", obj)
            outcome.failed[
                _("unexpected %(error)s, see the logs") % {"error": type(exc).__name__}
            ] += 1
        else:
            outcome.succeeded += 1
            if isinstance(detail, str) and detail:
                outcome.details.append(f"{obj}: {detail}")
    return outcome


def _reason(exc: Exception) -> str:
    """An error's text without the object it happened to, so equal failures group together."""
    if isinstance(exc, RecallError):
        return exc.for_staff()  # says which setting to fix, or that a later try may work
    return str(exc)


def _grouped(reasons: Counter[str]) -> str:
    return "; ".join(f"{reason} ({count})" for reason, count in reasons.most_common())


def report(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    outcome: Outcome,
    done: Callable[[int], str],
) -> None:
    """One message per kind of result; ``done(n)`` words the success ("Scheduled a bot for 2")."""
    if outcome.succeeded:
        text = done(outcome.succeeded)
        if outcome.details:
            shown = outcome.details[:MAX_DETAILS]
            more = len(outcome.details) - len(shown)
            text = " ".join([text, *shown, *([_("(and %d more)") % more] if more else [])])
        modeladmin.message_user(request, text, messages.SUCCESS)
    skipped = outcome.skipped.total()
    if skipped:
        modeladmin.message_user(
            request,
            _("Skipped %(count)d: %(reasons)s.")
            % {"count": skipped, "reasons": _grouped(outcome.skipped)},
            messages.WARNING,
        )
    failed = outcome.failed.total()
    if failed:
        modeladmin.message_user(
            request,
            _("Failed %(count)d: %(reasons)s.")
            % {"count": failed, "reasons": _grouped(outcome.failed)},
            messages.ERROR,
        )


def intermediate_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: Any,
    *,
    template: str,
    title: str,
    action: str,
    **context: Any,
) -> TemplateResponse:
    """An admin page between choosing an action and running it (a form, or a confirmation).

    The page re-posts the action name, the selection and ``select_across`` so that submitting it
    runs the same action on the same objects; ``post=yes`` tells the action the page was submitted.
    """
    opts = modeladmin.model._meta
    return TemplateResponse(
        request,
        template,
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "opts": opts,
            "app_label": opts.app_label,
            "queryset": queryset,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "media": modeladmin.media,
            **context,
        },
    )
