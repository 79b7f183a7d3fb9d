"""Campaign events as outgoing webhook events for integrators (``campaign.completed``).

Connected from ``campaigns/receivers.py``. Like ``inbox/outgoing_events.py``: receivers run after
the change commits and only queue deliveries; payloads are built only when someone subscribes.
"""

from django.dispatch import receiver

from campaigns import services, signals
from campaigns.models import Campaign
from inbox.outgoing_events import _time
from integrations import outgoing


def campaign_payload(campaign_id: int) -> dict:
    campaign = Campaign.objects.select_related("number", "template", "segment").get(pk=campaign_id)
    counters = services.campaign_counters_refresh(campaign_id)
    return {
        "campaign": {
            "id": str(campaign.code),
            "name": campaign.name,
            "status": campaign.status,
            "run": campaign.run,
            "recurring": campaign.is_recurring,
            "started_at": _time(campaign.started_at),
            "completed_at": _time(campaign.completed_at),
            "next_run_at": _time(campaign.next_run_at),
            "number": {
                "id": str(campaign.number.code),
                "display_phone_number": campaign.number.display_phone_number,
            },
            "template": {"name": campaign.template.name, "language": campaign.template.language},
            "segment": {"id": str(campaign.segment.code), "name": campaign.segment.name}
            if campaign.segment
            else None,
        },
        "stats": counters,
    }


@receiver(signals.campaign_completed, dispatch_uid="outgoing-campaign-completed")
def campaign_completed(sender, *, campaign_id, **kwargs):
    organization_id = Campaign.objects.values_list("organization_id", flat=True).get(pk=campaign_id)
    outgoing.event_publish(
        organization_id=organization_id,
        event_type="campaign.completed",
        data=lambda: campaign_payload(campaign_id),
    )
