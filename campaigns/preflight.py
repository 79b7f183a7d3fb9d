"""What a launch will do, shown before staff confirm it: who receives, who is skipped and why,
and what WhatsApp will roughly charge."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.money import money
from campaigns import selectors, services
from campaigns.models import Campaign
from inbox.models import Chat, Contact

# Meta's list price per delivered template message for Brazil (USD), an estimate for the
# confirmation page only, as Meta bills the business directly. Checked on 2026-12-05 against
# third-party copies of Meta's rate card (effective 2026-01-01 in USD; the AED card effective
# 2026-10-01 converts to the same figures), not against Meta's own page: the page labels it an
# estimate with this date. Meta reprices quarterly (1 January, April, July, October); and from
# 2026-10-01 utility templates inside the window are reported to be charged too (unconfirmed;
# ``launch_summary`` still counts them free). Update the date with the figures.
TEMPLATE_PRICES_DATE = date(2026, 1, 1)
TEMPLATE_PRICES_USD = {
    "MARKETING": Decimal("0.0625"),
    "UTILITY": Decimal("0.0068"),
    "AUTHENTICATION": Decimal("0.0068"),
}
SAMPLE_SIZE = 200


@dataclass
class LaunchSummary:
    audience: int
    opted_out: int
    no_opt_in: int
    sendable: int
    in_window: int
    billable: int
    missing_in_sample: int
    sampled: int
    category: str
    price_each: Decimal
    cost: Decimal
    cost_local: str  # in the organization's currency
    prices_date: date = TEMPLATE_PRICES_DATE


def launch_summary(campaign: Campaign) -> LaunchSummary:
    """Counts for the launch confirmation. Utility templates are free inside the 24 h customer
    service window; marketing templates are charged whether or not the window is open."""
    audience = selectors.audience_contacts(campaign)
    total = audience.count()
    opted_out = audience.filter(opt_in=Contact.OptIn.OPTED_OUT).count()
    no_opt_in = 0
    if campaign.require_opt_in:
        no_opt_in = (
            audience.exclude(opt_in=Contact.OptIn.OPTED_OUT)
            .exclude(opt_in=Contact.OptIn.OPTED_IN)
            .count()
        )
    sendable_qs = audience.exclude(opt_in=Contact.OptIn.OPTED_OUT)
    if campaign.require_opt_in:
        sendable_qs = sendable_qs.filter(opt_in=Contact.OptIn.OPTED_IN)
    sendable = total - opted_out - no_opt_in
    open_chat = Chat.objects.filter(
        contact_id=OuterRef("pk"),
        number_id=campaign.number_id,
        window_expires_at__gt=timezone.now(),
    )
    in_window = sendable_qs.filter(Exists(open_chat)).count()
    category = (campaign.template.category or "MARKETING").upper()
    price = TEMPLATE_PRICES_USD.get(category, TEMPLATE_PRICES_USD["MARKETING"])
    billable = sendable - in_window if category == "UTILITY" else sendable
    sample = list(sendable_qs.order_by("pk")[:SAMPLE_SIZE])
    previews = services.campaign_preview(campaign=campaign, contacts=sample)
    return LaunchSummary(
        audience=total,
        opted_out=opted_out,
        no_opt_in=no_opt_in,
        sendable=sendable,
        in_window=in_window,
        billable=billable,
        missing_in_sample=sum(1 for p in previews if p.get("error")),
        sampled=len(sample),
        category=category,
        price_each=price,
        cost=(price * billable).quantize(Decimal("0.01")),
        cost_local=money(price * billable, campaign.organization),
    )
