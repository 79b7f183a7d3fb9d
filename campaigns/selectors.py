"""Reads: contacts matching a segment's filters, campaign lists and results."""

from datetime import datetime, time

from django.db.models import Count, Q, QuerySet
from django.utils.dateparse import parse_date

from campaigns.models import Campaign, CampaignRecipient, Segment
from inbox.models import Contact

ENGAGEMENT = {
    "read_not_replied": Q(status=CampaignRecipient.Status.READ),
    "delivered_not_read": Q(status=CampaignRecipient.Status.DELIVERED),
    "replied": Q(status=CampaignRecipient.Status.REPLIED),
    # Sent but no delivery receipt yet, or the delivery failed: the message never reached them.
    "not_delivered": Q(
        status__in=(CampaignRecipient.Status.SENT, CampaignRecipient.Status.FAILED),
        delivered_at__isnull=True,
    ),
    "failed": Q(status=CampaignRecipient.Status.FAILED),
}


def _day_start(value: str, end: bool = False):
    day = parse_date(value or "")
    if day is None:
        return None
    from django.utils import timezone

    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


def contacts_filter(organization, filters: dict) -> QuerySet[Contact]:
    """Contacts of ``organization`` matching a segment's ``filters`` (see ``Segment.filters``)."""
    contacts = Contact.objects.filter(organization=organization)
    for tag in filters.get("tags") or []:
        contacts = (
            contacts.filter(tags__contains=[tag])
            if _json_contains()
            else contacts.filter(tags__icontains=f'"{tag}"')
        )
    for tag in filters.get("exclude_tags") or []:
        contacts = contacts.exclude(tags__icontains=f'"{tag}"')
    for key, value in (filters.get("attributes") or {}).items():
        contacts = contacts.filter(**{f"attributes__{key}": value})
    if filters.get("opt_in"):
        contacts = contacts.filter(opt_in=filters["opt_in"])
    if filters.get("stages"):
        contacts = contacts.filter(stage__in=filters["stages"])
    if filters.get("lead_score_min") is not None:
        contacts = contacts.filter(lead_score__gte=filters["lead_score_min"])
    if filters.get("lead_score_max") is not None:
        contacts = contacts.filter(lead_score__lte=filters["lead_score_max"])
    after = _day_start(filters.get("inbound_after"))
    if after:
        contacts = contacts.filter(last_inbound_at__gte=after)
    before = _day_start(filters.get("inbound_before"), end=True)
    if before:
        contacts = contacts.filter(Q(last_inbound_at__lte=before) | Q(last_inbound_at__isnull=True))
    engagement = filters.get("engagement") or {}
    if engagement.get("state") in ENGAGEMENT:
        recipients = CampaignRecipient.objects.filter(
            ENGAGEMENT[engagement["state"]], organization=organization
        )
        if engagement.get("campaign"):
            recipients = recipients.filter(campaign__code=engagement["campaign"])
        contacts = contacts.filter(pk__in=recipients.values("contact_id"))
    return contacts


def _json_contains() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def segment_contacts(segment: Segment) -> QuerySet[Contact]:
    if segment.kind == Segment.Kind.STATIC:
        return segment.contacts.filter(organization_id=segment.organization_id)
    return contacts_filter(segment.organization, segment.filters)


def audience_contacts(campaign: Campaign) -> QuerySet[Contact]:
    if campaign.segment_id is None:
        return Contact.objects.filter(
            organization_id=campaign.organization_id, opt_in=Contact.OptIn.OPTED_IN
        )
    return segment_contacts(campaign.segment)


def contact_list(organization, *, query: str = "", filters: dict | None = None):
    contacts = contacts_filter(organization, filters or {})
    if query:
        contacts = contacts.filter(
            Q(name__icontains=query)
            | Q(profile_name__icontains=query)
            | Q(phone__icontains=query)
            | Q(email__icontains=query)
        )
    return contacts.order_by("name", "phone")


def segment_list(organization) -> QuerySet[Segment]:
    return Segment.objects.filter(organization=organization).annotate(
        static_count=Count("contacts")
    )


def campaign_list(organization) -> QuerySet[Campaign]:
    return Campaign.objects.filter(organization=organization).select_related(
        "number", "template", "segment"
    )


def campaign_failures(campaign: Campaign) -> list[dict]:
    return list(
        campaign.recipients.filter(
            status__in=(CampaignRecipient.Status.FAILED, CampaignRecipient.Status.SKIPPED)
        )
        .values("status", "reason", "error_code")
        .annotate(n=Count("id"))
        .order_by("-n")
    )


def campaign_recipients(campaign: Campaign, status: str = "") -> QuerySet[CampaignRecipient]:
    recipients = campaign.recipients.select_related("contact", "reply__chat").order_by("-id")
    if status:
        recipients = recipients.filter(status=status)
    return recipients


def campaign_daily(campaign: Campaign, organization_tz) -> list[dict]:
    """Per day of sending (organization's time zone): sent, delivered, read, replied, failed."""
    from django.db.models.functions import TruncDate

    rows = (
        campaign.recipients.exclude(sent_at=None)
        .annotate(day=TruncDate("sent_at", tzinfo=organization_tz))
        .values("day")
        .annotate(
            sent=Count("id"),
            delivered=Count("id", filter=Q(delivered_at__isnull=False)),
            read=Count("id", filter=Q(read_at__isnull=False)),
            replied=Count("id", filter=Q(replied_at__isnull=False)),
            failed=Count("id", filter=Q(failed_at__isnull=False)),
        )
        .order_by("day")
    )
    return list(rows)


def campaign_wait_reason(campaign: Campaign) -> dict | None:
    """Why a running campaign is waiting, for its page: its number reached the daily cap
    (``{"cap", "sent", "until"}``), or None."""
    from django.utils import timezone

    from integrations import web as web_numbers

    if campaign.status != Campaign.Status.RUNNING or not campaign.throttled_until:
        return None
    if campaign.throttled_until <= timezone.now():
        return None
    cap = web_numbers.daily_cap_for(campaign.number)
    if cap is None:
        return None
    sent = web_numbers.daily_sends(campaign.number)
    if sent < cap:
        return None
    return {"cap": cap, "sent": sent, "until": campaign.throttled_until}
