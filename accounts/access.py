"""Who may do what: the role matrix and the one decorator every tenant view uses.

The current organization is resolved once per request by ``TenantMiddleware`` (and once per
websocket connection by ``TenantWebsocketMiddleware``); views only ever see ``request.organization``
and ``request.membership``. Objects of another organization are looked up through queries scoped
to ``request.organization`` and therefore answer 404.
"""

from enum import IntEnum
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from accounts.models import Role


class Level(IntEnum):
    NONE = 0
    ASSIGNED = 1  # agents: only the chats assigned to them
    VIEW = 2
    FULL = 3


SECTIONS = ("dashboard", "chats", "assistants", "campaigns", "settings", "billing")

_F, _V, _A, _N = Level.FULL, Level.VIEW, Level.ASSIGNED, Level.NONE
MATRIX: dict[str, dict[str, Level]] = {
    #                  dashboard chats assistants campaigns settings billing
    Role.ADMIN: dict(zip(SECTIONS, (_F, _F, _F, _F, _F, _F), strict=True)),
    Role.MANAGER: dict(zip(SECTIONS, (_F, _F, _F, _F, _V, _V), strict=True)),
    Role.OPERATOR: dict(zip(SECTIONS, (_V, _F, _V, _V, _N, _N), strict=True)),
    Role.AGENT: dict(zip(SECTIONS, (_V, _A, _N, _N, _N, _N), strict=True)),
}


def level_for(membership, section: str) -> Level:
    if membership is None:
        return Level.NONE
    return MATRIX[membership.role][section]


def can_view(membership, section: str) -> bool:
    return level_for(membership, section) >= Level.ASSIGNED


def can_edit(membership, section: str) -> bool:
    return level_for(membership, section) == Level.FULL or (
        section == "chats" and level_for(membership, section) == Level.ASSIGNED
    )


def section_required(section: str, *, edit: bool = False):
    """Require a signed-in member of the current organization with access to ``section``.

    Denied access is 403; a signed-in user with no organization is sent to create one.
    """
    if section not in SECTIONS:
        raise ValueError(f"Unknown section {section!r}")

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.organization is None:
                return redirect("organization_create")
            allowed = can_edit if edit else can_view
            if not allowed(request.membership, section):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.section = section
        return wrapper

    return decorator
