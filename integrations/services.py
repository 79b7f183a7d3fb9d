"""The WhatsApp channel: clients per number, durable webhook ingest, processing and templates."""

import hashlib
import json
import logging
import re
import threading
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import connection, transaction
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

_registered_with_sandbox: set[tuple[str, ...]] = set()
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

    Done once per process for the same sandbox, webhook target and credentials; the sandbox keeps
    numbers in memory.
    """
    webhook_url = settings.SANDBOX_WEBHOOK_BASE_URL.rstrip("/") + webhook_path(number)
    fingerprint = hashlib.sha256(
        f"{number.access_token}\0{number.app_secret}\0{number.waba_id}".encode()
    ).hexdigest()
    key = (number.phone_number_id, settings.SANDBOX_URL, webhook_url, fingerprint)
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
                "webhook_url": webhook_url,
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


_webhook_numbers: dict[str, tuple[float, WhatsAppNumber]] = {}
WEBHOOK_NUMBER_TTL = 10.0  # seconds a number's webhook credentials are reused without a query


def webhook_number_cached(key: str) -> WhatsAppNumber | None:
    """``webhook_number`` from this process's memory only (None when not cached or stale)."""
    cached = _webhook_numbers.get(key)
    if cached and time.monotonic() - cached[0] < WEBHOOK_NUMBER_TTL:
        return cached[1]
    return None


def webhook_number(key: str, *, fresh: bool = False) -> WhatsAppNumber | None:
    """The active number a webhook key belongs to, with what the webhook needs (secret, verify
    token), kept a few seconds per process so that a delivery costs one INSERT. ``fresh``
    reads it again (e.g. after a signature mismatch, in case the secret was just rotated)."""
    now = time.monotonic()
    cached = _webhook_numbers.get(key)
    if cached and not fresh and now - cached[0] < WEBHOOK_NUMBER_TTL:
        return cached[1]
    number = (
        WhatsAppNumber.objects.filter(webhook_key=key, is_active=True)
        .only("pk", "organization_id", "app_secret", "verify_token")
        .first()
    )
    if number is None:
        _webhook_numbers.pop(key, None)
    else:
        if len(_webhook_numbers) > 10_000:
            _webhook_numbers.clear()
        _webhook_numbers[key] = (now, number)
    return number


def webhook_event_store(*, number: WhatsAppNumber, body: bytes, headers: dict) -> WebhookEvent:
    """Write one signed delivery to the durable log and queue its processing.

    The hot path of the webhook: one INSERT (autocommit) and one enqueue. Once the row exists the
    delivery is safe: if the queue loses the task (or is down), the sweep finds the row later.
    A body that is not JSON is stored already marked processed, with the reason.
    """
    audit = {name: headers[name] for name in AUDIT_HEADERS if name in headers}
    try:
        json.loads(body)
    except ValueError as error:  # UnicodeDecodeError is a ValueError too
        logger.warning("Webhook for number %s is not JSON: %s", number.pk, error)
        return WebhookEvent.objects.create(
            number=number,
            organization_id=number.organization_id,
            body=body,
            headers=audit,
            processed_at=timezone.now(),
            error=f"Malformed JSON: {error}"[:2000],
        )
    event = WebhookEvent.objects.create(
        number=number, organization_id=number.organization_id, body=body, headers=audit
    )
    try:
        tasks.enqueue("integrations.tasks.process_webhook_event", event.pk, queue="inbound")
    except Exception:  # the broker is down: the row is stored, the sweep will queue it
        logger.exception(
            "Webhook event %s stored but not queued; the sweep will pick it up", event.pk
        )
    return event


def webhook_event_process(event_id: int) -> None:
    """Parse a stored delivery and publish its domain events, exactly once in effect.

    Correctness comes from the database, not from the queue (django-q2 may run a task twice, or
    lose it when a worker dies): the work happens in one transaction that locks the event row and
    marks it processed, so a second worker given the same event skips it, and a worker killed
    midway leaves nothing behind but the unprocessed row, which the sweep queues again. On top of
    that, receivers dedupe by wamid and move statuses only forward, so a duplicate delivery from
    Meta (a different row with the same content) has no second effect either.

    A payload we cannot parse is recorded with the reason and not retried (the same bytes would
    fail the same way); a receiver failure is recorded and retried by the sweep.
    """
    with transaction.atomic():
        _relaxed_commit()
        attempted = WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(
            attempts=F("attempts") + 1
        )
    if not attempted:
        return
    try:
        with transaction.atomic():
            _relaxed_commit()
            # Lock the row: a second worker given the same event skips it (PostgreSQL) or waits
            # for it (SQLite serialises writers) and then finds it processed.
            claim = (
                WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True)
                .select_related("number")
                .defer("number__access_token")
            )
            if connection.features.has_select_for_update_skip_locked:
                claim = claim.select_for_update(skip_locked=True, of=("self",))
            event = claim.first()
            if event is None:
                return  # another worker holds it (or just finished it)
            if event.number is None:
                event.processed_at, event.error = timezone.now(), "The number was removed."
                event.save(update_fields=["processed_at", "error"])
                return
            try:
                parsed = payloads.parse_webhook_bytes(bytes(event.body))
            except payloads.PayloadError as error:
                logger.warning("Webhook event %s has an unknown shape: %s", event_id, error)
                event.processed_at, event.error = timezone.now(), f"Unrecognised payload: {error}"
                event.save(update_fields=["processed_at", "error"])
                return
            for item in parsed:
                _dispatch(event.number, item)
            WebhookEvent.objects.filter(pk=event_id).update(processed_at=timezone.now(), error="")
    except Exception as error:
        logger.exception("Webhook event %s failed; it will be retried", event_id)
        WebhookEvent.objects.filter(pk=event_id).update(
            error=f"{type(error).__name__}: {error}"[:2000]
        )


def _relaxed_commit() -> None:
    """Let this transaction commit without waiting for its WAL flush (PostgreSQL).

    Safe for processing only: the delivery itself was stored with a durable commit before it
    was acknowledged, so if the database crashed and lost the last milliseconds of processing,
    those events would simply be unprocessed again and the sweep would redo them (harmlessly).
    It spares each event one or two disk flushes, the main cost of draining a backlog.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _dispatch(number: WhatsAppNumber, item) -> None:
    item_pnid = getattr(item, "phone_number_id", None)
    if item_pnid is not None and item_pnid != number.phone_number_id:
        # Signed with this number's secret but naming another number: never let it reach
        # another number's (or another tenant's) data.
        logger.warning(
            "Webhook for number %s names phone_number_id %s; ignored", number.pk, item_pnid
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
    elif isinstance(item, payloads.ValueErrors):
        for error in item.errors:
            logger.warning(
                "WhatsApp reported an error for number %s: #%s %s (%s)",
                number.pk,
                error.code,
                error.title,
                error.details,
            )
    else:
        logger.info("Webhook item %s for number %s recorded only", type(item).__name__, number.pk)


def webhook_events_sweep(*, older_than_seconds: int = 60) -> int:
    """Queue again the deliveries stored but never processed (a worker died, the queue lost the
    task, a receiver failed). Reprocessing is harmless. Returns how many were queued."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = WebhookEvent.objects.filter(
        processed_at__isnull=True, received_at__lt=cutoff, attempts__lt=MAX_PROCESSING_ATTEMPTS
    ).order_by("received_at")
    ids = list(pending.values_list("pk", flat=True)[:500])
    for event_id in ids:
        tasks.dispatch("integrations.tasks.process_webhook_event", event_id, queue="inbound")
    return len(ids)


# --- Templates and number health ------------------------------------------------------------


def template_status_apply(*, number: WhatsAppNumber, update) -> int:
    """Apply ``message_template_status_update`` to this number's WABA templates."""
    templates = MessageTemplate.objects.filter(
        organization_id=number.organization_id, number__waba_id=number.waba_id
    )
    by_id = templates.filter(meta_id=str(update.template_id)) if update.template_id else None
    target = (
        by_id
        if by_id is not None and by_id.exists()
        else templates.filter(name=update.template_name, language=update.language)
    )
    return target.update(status=update.event.upper(), rejected_reason=update.reason or "")


def number_quality_apply(*, number: WhatsAppNumber, update) -> None:
    digits = re.sub(r"\D", "", update.display_phone_number or "")
    if digits and digits != re.sub(r"\D", "", number.display_phone_number):
        logger.info("Quality update for %s ignored on number %s", digits, number.pk)
        return
    fields = {}
    if getattr(update, "current_limit", ""):
        fields["messaging_limit"] = update.current_limit
    if getattr(update, "event", ""):
        fields["quality_rating"] = update.event
    if fields:
        WhatsAppNumber.objects.filter(pk=number.pk).update(**fields)


def templates_sync(*, number: WhatsAppNumber) -> int:
    """Fetch the WABA's templates into ``MessageTemplate`` rows; returns how many were seen.

    Templates gone from the WABA are kept (campaigns may point at them) but marked DELETED.
    """
    remote = client_for(number).list_templates()
    seen = []
    with transaction.atomic():
        for item in remote:
            template, _created = MessageTemplate.objects.update_or_create(
                number=number,
                name=item["name"],
                language=item.get("language", ""),
                defaults={
                    "organization_id": number.organization_id,
                    "meta_id": str(item.get("id", "")),
                    "category": item.get("category", ""),
                    "status": item.get("status", ""),
                    "components": item.get("components", []),
                    "rejected_reason": "",
                },
            )
            seen.append(template.pk)
        MessageTemplate.objects.filter(number=number).exclude(pk__in=seen).update(status="DELETED")
    logger.info("Synced %d templates for number %s", len(remote), number.pk)
    return len(remote)
