"""Who sees which agenda. The two clinic roles map onto the organization's role matrix
(``accounts.access``) instead of adding rows to it:

| role on the agenda | who                                                    | sees / edits                 |
|--------------------|--------------------------------------------------------|------------------------------|
| receptionist       | admin, manager, operator (full access to chats)        | every professional's agenda  |
| professional       | any member linked to a ``Professional`` (``user``)     | only their own agenda        |
| none               | an agent not linked to a professional                  | nothing (403)                |

The agenda settings (services, professionals' hours and exceptions, opening hours and holidays,
booking rules) are edited by receptionists only (``settings_required``).

Appointments of other organizations, or of agendas a professional may not see, answer 404.
"""

from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect

from accounts import access
from appointments.models import Appointment, Professional


@dataclass(frozen=True)
class AgendaScope:
    everyone: bool  # receptionist: every agenda
    own: tuple[int, ...]  # professional ids linked to this member

    @property
    def any(self) -> bool:
        return self.everyone or bool(self.own)


def agenda_scope(membership) -> AgendaScope:
    if membership is None:
        return AgendaScope(False, ())
    everyone = access.level_for(membership, "chats") == access.Level.FULL
    if membership.user_id is None:  # an API key: organization-wide, like an admin
        return AgendaScope(everyone, ())
    own = tuple(
        Professional.objects.filter(
            organization=membership.organization, user_id=membership.user_id
        ).values_list("pk", flat=True)
    )
    return AgendaScope(everyone, own)


def professionals_for_member(membership):
    scope = agenda_scope(membership)
    professionals = Professional.objects.filter(organization=membership.organization)
    return professionals if scope.everyone else professionals.filter(pk__in=scope.own)


def get_professional_for_member(membership, code) -> Professional:
    return get_object_or_404(professionals_for_member(membership), code=code)


def get_appointment_for_member(membership, code) -> Appointment:
    return get_object_or_404(
        Appointment.objects.select_related(
            "service", "professional", "contact", "organization"
        ).filter(professional__in=professionals_for_member(membership)),
        organization=membership.organization,
        code=code,
    )


def agenda_required(view):
    """A signed-in member with an agenda to see (receptionist or linked professional)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.organization is None:
            return redirect("organization_create")
        scope = agenda_scope(request.membership)
        if not scope.any:
            raise PermissionDenied
        request.agenda_scope = scope
        return view(request, *args, **kwargs)

    return wrapper


def settings_required(view):
    """The agenda settings pages: receptionists (every agenda) only; professionals get 403."""

    @agenda_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.agenda_scope.everyone:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
