"""Reports' access functions: contacts are reached only within the current organization."""

from django.shortcuts import get_object_or_404

from inbox.models import Contact


def get_contact_for_admin(request, code) -> Contact:
    """The contact ``code`` of the request's organization (404 otherwise); the view's decorator
    has already required an organization admin (Settings, edit)."""
    return get_object_or_404(
        Contact.objects.select_related("organization"), organization=request.organization, code=code
    )
