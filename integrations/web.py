"""WhatsApp Web numbers (paired by QR code through Evolution API): adding one, its connection
(QR, state, logout) and the pace and daily cap that keep a WhatsApp Web session out of trouble.

WhatsApp has no official rate for these numbers, and bulk sending from a personal session is
the surest way to a ban, so the apps above ask ``send_gap_seconds`` (a random pause between
campaign sends) and ``daily_quota_take`` (refused past the number's daily cap) for any number
whose provider declares a ``daily_cap``; they never ask for a provider by name.
"""

from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from integrations.errors import IntegrationError, RateLimitedError
from integrations.events import ConnectionUpdate
from integrations.models import DailySends, EvolutionServer, MessageTemplate, WhatsAppNumber
from integrations.providers import ConnectionInfo, capabilities_for, provider_for

logger = logging.getLogger(__name__)

STATES = ("open", "connecting", "close")


def web_number_create(
    *,
    organization,
    name: str,
    server: EvolutionServer | None = None,
    daily_cap: int | None = None,
) -> WhatsAppNumber:
    """A new WhatsApp Web number, not yet paired (``web_number_connect`` shows its QR)."""
    instance = f"porfin-{organization.pk}-{uuid.uuid4().hex[:10]}"
    return WhatsAppNumber.objects.create(
        organization=organization,
        name=name,
        display_phone_number="",
        phone_number_id=f"evolution:{instance}",
        provider=WhatsAppNumber.Provider.EVOLUTION,
        evolution_server=server,
        evolution_instance=instance,
        connection_state="close",
        throughput_per_second=1,
        daily_cap=daily_cap,
    )


def web_number_connect(number: WhatsAppNumber) -> ConnectionInfo:
    """Create or resume the number's session; its QR code is kept for the connect page."""
    info = provider_for(number).connect()
    _state_save(number, state=info.state, qr=info.qr)
    return info


def web_number_refresh(number: WhatsAppNumber) -> ConnectionInfo:
    """Ask the server for the session's state (the webhook may have been missed)."""
    info = provider_for(number).connection_state()
    _state_save(number, state=info.state, qr="" if info.is_open else None)
    return info


def web_number_logout(number: WhatsAppNumber) -> None:
    try:
        provider_for(number).logout()
    except IntegrationError as error:
        if error.http_status != 404:  # an instance already gone is logged out too
            raise
    _state_save(number, state="close", qr="")


def connection_apply(*, number: WhatsAppNumber, update: ConnectionUpdate) -> None:
    """A ``CONNECTION_UPDATE`` or ``QRCODE_UPDATED`` from the number's session."""
    state = update.state if update.state in STATES else "close"
    qr = update.qr if update.qr else ("" if state == "open" else None)
    phone = update.phone if state == "open" else ""
    _state_save(number, state=state, qr=qr, phone=phone)


def _state_save(number: WhatsAppNumber, *, state: str, qr: str | None, phone: str = "") -> None:
    fields = {"connection_state": state[:20], "connection_updated_at": timezone.now()}
    if qr is not None:
        fields["connection_qr"] = qr
    if phone:
        fields["display_phone_number"] = f"+{phone}"[:32]
    WhatsAppNumber.objects.filter(pk=number.pk).update(**fields)
    for name, value in fields.items():
        setattr(number, name, value)


# --- Message texts (what campaigns send instead of templates) ----------------------------------

TEXT_CATEGORY = "TEXT"  # a MessageTemplate kept here only, never submitted to a provider


def web_text_save(*, number: WhatsAppNumber, name: str, body: str) -> MessageTemplate:
    """A reusable message text for a number without templates, for campaigns to choose like a
    template (``{{1}}``, ``{{2}}``... are filled per contact). Stored as an approved
    ``MessageTemplate`` of category TEXT, so the campaign pages and engine need nothing else;
    on such numbers campaigns send its text as a plain message."""
    if capabilities_for(number).templates:
        raise ValueError("This number has real templates; sync them instead.")
    text, _created = MessageTemplate.objects.update_or_create(
        number=number,
        name=name,
        language=_template_language(number.organization.language or "pt-br"),
        defaults={
            "organization_id": number.organization_id,
            "category": TEXT_CATEGORY,
            "status": "APPROVED",
            "components": [{"type": "BODY", "text": body}],
        },
    )
    return text


def _template_language(language: str) -> str:
    language, _sep, region = language.partition("-")
    return f"{language}_{region.upper()}" if region else language


# --- Pace and daily cap --------------------------------------------------------------------------


# Meta's messaging limit tiers (``messaging_limit_tier``): business-initiated conversations with
# unique customers in a rolling 24 hours. A Cloud API number's default daily cap is its tier's
# figure (unique customers, counted here as messages: a campaign sends one per customer), and
# none when the tier is unlimited or not known yet.
TIER_CAPS = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
}


def tier_cap(messaging_limit: str) -> int | None:
    return TIER_CAPS.get((messaging_limit or "").strip().upper())


def daily_cap_for(number: WhatsAppNumber) -> int | None:
    """The most business-initiated messages the number may send today, or None (no cap).

    WhatsApp Web numbers (providers that declare a ``daily_cap``): the number's own cap, else
    ``EVOLUTION_DAILY_CAP``, else the provider's. Others (Cloud API): the number's own cap, else
    its messaging tier's (``tier_cap``), else none."""
    declared = capabilities_for(number).daily_cap
    if declared is None:
        return number.daily_cap or tier_cap(number.messaging_limit)
    return number.daily_cap or settings.EVOLUTION_DAILY_CAP or declared


def send_gap_seconds(number: WhatsAppNumber) -> float | None:
    """A random pause before the number's next bulk send (None: the number's rate applies)."""
    if capabilities_for(number).daily_cap is None:
        return None
    low = settings.EVOLUTION_GAP_MIN_SECONDS
    high = max(low, settings.EVOLUTION_GAP_MAX_SECONDS)
    return random.uniform(low, high)  # noqa: S311 (a pace, not a secret)


def daily_sends(number: WhatsAppNumber) -> int:
    row = DailySends.objects.filter(number=number, day=timezone.now().date()).first()
    return row.count if row else 0


def daily_quota_take(number: WhatsAppNumber, count: int = 1) -> bool:
    """Count ``count`` sends against today's cap; False (nothing counted) when they would pass
    it. One conditional UPDATE, so concurrent senders never exceed the cap together."""
    cap = daily_cap_for(number)
    if cap is None:
        return True
    if count > cap:
        return False
    today = timezone.now().date()
    for _attempt in range(2):
        taken = DailySends.objects.filter(number=number, day=today, count__lte=cap - count).update(
            count=F("count") + count
        )
        if taken:
            return True
        if DailySends.objects.filter(number=number, day=today).exists():
            return False
        try:
            with transaction.atomic():
                DailySends.objects.create(number=number, day=today, count=count)
            return True
        except IntegrityError:  # another sender created today's row first: try the UPDATE
            continue
    return False


def daily_quota_take_upto(number: WhatsAppNumber, count: int) -> int:
    """Count up to ``count`` sends against today's cap and return how many were granted (the
    first that many of a batch go out, the rest wait). One conditional UPDATE for the whole
    batch while the cap is far; one per send only at the cap's edge."""
    if count <= 0:
        return 0
    if count > 1 and daily_quota_take(number, count):
        return count
    granted = 0
    while granted < count and daily_quota_take(number):
        granted += 1
    return granted


class DailyCapReached(RateLimitedError):
    """The number sent its daily cap of business-initiated messages: wait for tomorrow (UTC)."""


def daily_cap_error(number: WhatsAppNumber) -> DailyCapReached:
    now = timezone.now()
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)
    return DailyCapReached(
        "This number reached its daily cap; sending resumes tomorrow.",
        title="Daily cap reached",
        details=f"{daily_cap_for(number)} messages a day",
        permanent=False,
        retry_after=(tomorrow - now).total_seconds(),
    )
