"""One access function per model; other organizations' objects answer 404."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from accounts import access
from campaigns.models import Campaign, ContactImport, Segment
from inbox.models import Contact


def get_campaign_for_member(membership, code) -> tuple[Campaign, bool]:
    campaign = get_object_or_404(
        Campaign.objects.select_related("number", "template", "segment", "organization"),
        organization=membership.organization,
        code=code,
    )
    return campaign, access.can_edit(membership, "campaigns")


def get_editable_campaign_for_member(membership, code) -> Campaign:
    campaign, can_edit = get_campaign_for_member(membership, code)
    if not can_edit:
        raise PermissionDenied
    return campaign


def get_segment_for_member(membership, code) -> tuple[Segment, bool]:
    segment = get_object_or_404(Segment, organization=membership.organization, code=code)
    return segment, access.can_edit(membership, "campaigns")


def get_contact_for_member(membership, code) -> tuple[Contact, bool]:
    contact = get_object_or_404(Contact, organization=membership.organization, code=code)
    return contact, access.can_edit(membership, "campaigns")


def get_contact_import_for_member(membership, code) -> ContactImport:
    """An import is seen by whoever may edit contacts (it names the file's rows)."""
    if not access.can_edit(membership, "campaigns"):
        raise PermissionDenied
    return get_object_or_404(ContactImport, organization=membership.organization, code=code)
