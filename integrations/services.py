"""The WhatsApp channel: clients per number, durable webhook ingest, processing and templates."""

import logging
import re
import threading
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config import tasks
from integrations import signals
from integrations.models import MessageTemplate, WebhookEvent, WhatsAppNumber
from integrations.whatsapp import payloads
from integrations.whatsapp.client import CloudAPIClient

logger = logging.getLogger(__name__)

AUDIT_HEADERS = (
    "user-agent",
    "x-hub-signature-256",
    "content-type",
    "content-length",
    "x-forwarded-for",
)
MAX_PROCESSING_ATTEMPTS = 8


# --- Clients ------------------------------------------------------------------------------------

_registered_with_sandbox: set[tuple[str, str]] = set()
_registration_lock = threading.Lock()


def client_for(number: WhatsAppNumber) -> CloudAPIClient:
    """The Cloud API client for ``number``: Meta in production, the sandbox for sandbox numbers.

    Only the base URL differs; the same client code runs against both.
    """
    if number.provider == WhatsAppNumber.Provider.SANDBOX:
        sandbox_register(number)
        base_url = settings.SANDBOX_URL
    else:
        base_url = settings.WHATSAPP_GRAPH_BASE_URL
    return CloudAPIClient(
        base_url=base_url,
        api_version=settings.WHATSAPP_GRAPH_API_VERSION,
        phone_number_id=number.phone_number_id,
        access_token=number.access_token,
        waba_id=number.waba_id,
    )


def webhook_path(number: WhatsAppNumber) -> str:
    return f"/webhooks/whatsapp/{number.webhook_key}/"


def sandbox_register(number: WhatsAppNumber, *, force: bool = False) -> None:
    """Tell the sandbox about a sandbox number (token, secret, where to send its webhooks).

    Done once per process and sandbox URL; the sandbox keeps numbers in memory.
    """
    key = (number.phone_number_id, settings.SANDBOX_URL)
    with _registration_lock:
        if key in _registered_with_sandbox and not force:
            return
        response = requests.post(
            settings.SANDBOX_URL.rstrip("/") + "/_sandbox/numbers",
            json={
                "phone_number_id": number.phone_number_id,
                "display_phone_number": re.sub(r"\D", "", number.display_phone_number),
                "waba_id": number.waba_id,
                "access_token": number.access_token,
                "app_secret": number.app_secret,
                "webhook_url": settings.SANDBOX_WEBHOOK_BASE_URL.rstrip("/") + webhook_path(number),
                "verify_token": number.verify_token,
                # Porfin checks the 24-hour window itself before any call; the sandbox's own
                # check knows only the traffic it saw, so it would refuse seeded demo chats.
                "enforce_window": False,
            },
            timeout=5,
        )
        response.raise_for_status()
        _registered_with_sandbox.add(key)


def sandbox_customer_send(*, number: WhatsAppNumber, spec: dict) -> dict:
    """Make the sandbox send ``spec`` as a customer message to ``number``'s webhook."""
    sandbox_register(number)
    response = requests.post(
        f"{settings.SANDBOX_URL.rstrip('/')}/_sandbox/numbers/{number.phone_number_id}/inbound",
        json=spec,
        timeout=15,
    )
    if response.status_code >= 400:
        raise requests.HTTPError(response.json().get("error", response.text), response=response)
    return response.json()


# --- Inbound: store first, process after ---------------------------------------------------------


def webhook_event_store(*, number: WhatsAppNumber, body: bytes, headers: dict) -> WebhookEvent:
    """Write the delivery to the durable log and queue its processing (after commit)."""
    audit = {name: headers[name] for name in AUDIT_HEADERS if name in headers}
    with transaction.atomic():
        event = WebhookEvent.objects.create(
            number=number, organization_id=number.organization_id, body=body, headers=audit
        )
        tasks.enqueue("integrations.tasks.process_webhook_event", event.pk, queue="inbound")
    return event


def webhook_event_process(event_id: int) -> None:
    """Parse a stored delivery and publish its domain events; harmless to run twice.

    Receivers dedupe by wamid and move statuses only forward, so a retry after a crash (or a
    duplicate delivery from Meta) has no second effect. A payload we cannot parse is recorded
    with the reason and not retried; a receiver failure is recorded and retried by the sweep.
    """
    event = WebhookEvent.objects.select_related("number").filter(pk=event_id).first()
    if event is None or event.processed_at is not None:
        return
    WebhookEvent.objects.filter(pk=event_id).update(attempts=F("attempts") + 1)
    try:
        parsed = payloads.parse_webhook_bytes(bytes(event.body))
    except payloads.PayloadError as error:
        logger.warning("Webhook event %s has an unknown shape: %s", event_id, error)
        WebhookEvent.objects.filter(pk=event_id).update(
            processed_at=timezone.now(), error=f"Unrecognised payload: {error}"
        )
        return
    try:
        with transaction.atomic():
            for item in parsed:
                _dispatch(event.number, item)
            WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(
                processed_at=timezone.now(), error=""
            )
    except Exception as error:
        logger.exception("Webhook event %s failed; it will be retried", event_id)
        WebhookEvent.objects.filter(pk=event_id).update(
            error=f"{type(error).__name__}: {error}"[:2000]
        )


def _dispatch(number: WhatsAppNumber, item) -> None:
    if getattr(item, "phone_number_id", number.phone_number_id) != number.phone_number_id:
        # A payload signed with this number's secret but naming another number: never let
        # it reach another tenant's data.
        logger.warning(
            "Webhook for %s names phone_number_id %s; ignored", number.pk, item.phone_number_id
        )
        return
    if isinstance(item, payloads.InboundMessage):
        signals.message_received.send(sender=WhatsAppNumber, number=number, message=item)
    elif isinstance(item, payloads.StatusUpdate):
        signals.status_received.send(sender=WhatsAppNumber, number=number, status=item)
    elif isinstance(item, payloads.TemplateStatusUpdate):
        template_status_apply(number=number, update=item)
    elif isinstance(item, payloads.PhoneNumberQualityUpdate):
        number_quality_apply(number=number, update=item)
    else:
        logger.info("Webhook item %s for number %s recorded only", type(item).__name__, number.pk)


def webhook_events_sweep(*, older_than_seconds: int = 60) -> int:
    """Re-queue deliveries that were stored but never processed (a worker died, a queue lost
    the task). Returns how many were queued."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = WebhookEvent.objects.filter(
        processed_at__isnull=True, received_at__lt=cutoff, attempts__lt=MAX_PROCESSING_ATTEMPTS
    ).values_list("pk", flat=True)[:500]
    ids = list(pending)
    for event_id in ids:
        tasks.dispatch("integrations.tasks.process_webhook_event", event_id, queue="inbound")
    return len(ids)


# --- Templates and number health ------------------------------------------------------------


def template_status_apply(*, number: WhatsAppNumber, update) -> None:
    MessageTemplate.objects.filter(
        organization_id=number.organization_id, name=update.template_name, language=update.language
    ).update(status=update.event.upper(), rejected_reason=update.reason or "")


def number_quality_apply(*, number: WhatsAppNumber, update) -> None:
    fields = {}
    if getattr(update, "current_limit", ""):
        fields["messaging_limit"] = update.current_limit
    if getattr(update, "event", ""):
        fields["quality_rating"] = update.event
    if fields:
        WhatsAppNumber.objects.filter(pk=number.pk).update(**fields)


def templates_sync(*, number: WhatsAppNumber) -> int:
    """Fetch the WABA's templates into ``MessageTemplate`` rows; returns how many were seen."""
    remote = client_for(number).list_templates()
    for item in remote:
        MessageTemplate.objects.update_or_create(
            number=number,
            name=item["name"],
            language=item.get("language", ""),
            defaults={
                "organization_id": number.organization_id,
                "meta_id": str(item.get("id", "")),
                "category": item.get("category", ""),
                "status": item.get("status", ""),
                "components": item.get("components", []),
            },
        )
    return len(remote)
