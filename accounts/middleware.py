"""Resolve the current organization once per request, and apply its language and time zone."""

import zoneinfo

from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation

from accounts import selectors

SESSION_KEY = "organization"
MFA_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/i18n/", "/webhooks/", "/sandbox/")


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        request.membership = None
        request.memberships = []
        user = request.user
        if user.is_authenticated:
            chosen = request.session.get(SESSION_KEY)
            membership, request.memberships = selectors.memberships_for_session(user, chosen)
            if membership is not None:
                request.membership = membership
                request.organization = membership.organization
                # Written only when it changes: a session write on every page was an UPDATE
                # and a commit per request (on SQLite, the database's write lock, waiting for
                # any worker that writes).
                if chosen != str(membership.organization.code):
                    request.session[SESSION_KEY] = str(membership.organization.code)
            language = user.language or (membership and membership.organization.language)
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
            if membership is not None:
                timezone.activate(zoneinfo.ZoneInfo(membership.organization.time_zone))
            if self._must_set_up_mfa(request):
                return redirect(reverse("mfa_activate_totp"))
        return self.get_response(request)

    @staticmethod
    def _must_set_up_mfa(request) -> bool:
        org = request.organization
        if org is None or not org.require_mfa:
            return False
        if request.path.startswith(MFA_EXEMPT_PREFIXES):
            return False
        return not selectors.user_has_totp(request.user)
