"""Outgoing webhooks: signed event notifications to integrators' URLs.

An event (``event_publish``) becomes one ``WebhookDelivery`` per active subscription to its
type, numbered in the subscription's ``sequence`` (receivers order by it; events of one chat
also carry the chat's own ``chat_sequence``). Each delivery is sent by a task and retried with
exponential backoff over about eight hours; a periodic sweep re-queues due retries, so nothing
depends on the queue keeping a timer. A subscription whose deliveries keep failing is disabled
and its organization's admins are emailed.

Signature (documented in Settings › Webhooks)::

    X-Porfin-Timestamp: 1767225600
    X-Porfin-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

Receivers recompute it over the raw body and reject timestamps older than five minutes.

Customer URLs go through ``integrations.egress``: never to private, loopback, link-local or
other non-public addresses (checked when the URL is saved and again on every connection).
"""

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, timedelta

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from integrations import egress
from integrations.egress import UnsafeURL, url_check
from integrations.models import WebhookDelivery, WebhookSubscription
from kernel import tasks
from kernel.admission import waiting_outside
from kernel.memo import ProcessMemo

logger = logging.getLogger(__name__)

USER_AGENT = "Porfin-Webhooks/1.0"
TIMEOUT = (5, 10)  # connect, read (seconds)
MAX_ATTEMPTS = 10  # 1 + 9 retries: 1, 2, 4, … 256 minutes apart ≈ 8.5 hours in all
BACKOFF_BASE = 60.0
DISABLE_AFTER_FAILURES = 15  # consecutive failed attempts across deliveries, none succeeding
CLAIM_TTL = timedelta(minutes=2)  # a "sending" row older than this was abandoned by its worker
RESPONSE_KEEP = 2000  # characters of the response body recorded
DELIVERY_RETENTION = timedelta(days=30)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


# --- Subscriptions ---------------------------------------------------------------------------


def subscription_create(
    *, organization, url: str, events: list[str], description: str = "", created_by=None
):
    url_check(url)
    return WebhookSubscription.objects.create(
        organization=organization,
        url=url,
        events=sorted(set(events) & set(WebhookSubscription.Event.values)),
        description=description,
        created_by=created_by,
    )


def subscription_enable(*, subscription: WebhookSubscription) -> None:
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=True, failure_streak=0, disabled_reason=""
    )
    subscriptions_changed(subscription.organization_id)


def subscription_disable(*, subscription: WebhookSubscription, reason: str = "") -> None:
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_reason=reason[:255]
    )
    subscriptions_changed(subscription.organization_id)


_subscriptions = ProcessMemo()


def subscriptions_changed(organization_id: int) -> None:
    """Forget this process's list of the organization's active subscriptions (other processes
    read the change within a couple of seconds). Saves and deletes call it by signal."""
    _subscriptions.forget(organization_id)


def _active_subscriptions(organization_id: int) -> list[tuple[int, list[str]]]:
    """(id, events) of the organization's active subscriptions: every message and status asks,
    and the answer rarely changes (it is often "none"); see ``kernel.memo``."""
    return _subscriptions.get(
        organization_id,
        lambda: list(
            WebhookSubscription.objects.filter(
                organization_id=organization_id, is_active=True
            ).values_list("pk", "events")
        ),
    )


# --- Events ----------------------------------------------------------------------------------


def event_publish(*, organization_id: int, event_type: str, data: dict | Callable[[], dict]) -> int:
    """Queue ``event_type`` with ``data`` to every active subscriber; returns how many.

    ``data`` may be a function, called only when someone subscribes. Call after the change
    commits (inbox domain events already are)."""
    subscription_ids = [
        pk for pk, events in _active_subscriptions(organization_id) if event_type in events
    ]
    if not subscription_ids:
        return 0
    subscriptions = list(
        WebhookSubscription.objects.filter(pk__in=subscription_ids, is_active=True)
    )
    if callable(data):
        data = data()
    with transaction.atomic():
        for subscription in subscriptions:
            delivery_create(subscription=subscription, event_type=event_type, payload=data)
    return len(subscriptions)


@transaction.atomic
def delivery_create(
    *, subscription: WebhookSubscription, event_type: str, payload: dict
) -> WebhookDelivery:
    """Queue one event to one subscription, next in its sequence; sent and retried by
    ``delivery_attempt``. The one way every app sends an outgoing webhook."""
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        last_sequence=F("last_sequence") + 1
    )
    sequence = (
        WebhookSubscription.objects.filter(pk=subscription.pk)
        .values_list("last_sequence", flat=True)
        .get()
    )
    delivery = WebhookDelivery.objects.create(
        organization_id=subscription.organization_id,
        subscription=subscription,
        event_type=event_type,
        sequence=sequence,
        payload=payload,
        next_attempt_at=timezone.now(),
    )
    tasks.enqueue("integrations.outgoing.delivery_attempt", delivery.pk)
    return delivery


DELIVERIES_PER_TASK = 100


def events_publish(
    *, organization_id: int, event_type: str, items: list | Callable[[], list]
) -> int:
    """``event_publish`` for many events of one type at once (an import creates thousands of
    contacts): one delivery per event and subscription as before, numbered in one block per
    subscription, stored with one INSERT per subscription and sent by one task per
    ``DELIVERIES_PER_TASK`` deliveries instead of one each. Returns how many deliveries."""
    subscription_ids = [
        pk for pk, events in _active_subscriptions(organization_id) if event_type in events
    ]
    if not subscription_ids:
        return 0
    subscriptions = list(
        WebhookSubscription.objects.filter(pk__in=subscription_ids, is_active=True)
    )
    if callable(items):
        items = items()
    if not items or not subscriptions:
        return 0
    now = timezone.now()
    ids: list[int] = []
    with transaction.atomic():
        for subscription in subscriptions:
            WebhookSubscription.objects.filter(pk=subscription.pk).update(
                last_sequence=F("last_sequence") + len(items)
            )
            last = (
                WebhookSubscription.objects.filter(pk=subscription.pk)
                .values_list("last_sequence", flat=True)
                .get()
            )
            first = last - len(items) + 1
            rows = WebhookDelivery.objects.bulk_create(
                WebhookDelivery(
                    organization_id=organization_id,
                    subscription=subscription,
                    event_type=event_type,
                    sequence=first + offset,
                    payload=data,
                    next_attempt_at=now,
                )
                for offset, data in enumerate(items)
            )
            ids += (
                [row.pk for row in rows]
                if all(r.pk for r in rows)
                else list(
                    WebhookDelivery.objects.filter(
                        subscription=subscription, sequence__gte=first, sequence__lte=last
                    )
                    .order_by("sequence")
                    .values_list("pk", flat=True)
                )
            )
        for start in range(0, len(ids), DELIVERIES_PER_TASK):
            tasks.enqueue(
                "integrations.outgoing.deliveries_attempt", ids[start : start + DELIVERIES_PER_TASK]
            )
    return len(ids)


def deliveries_attempt(delivery_ids: list[int]) -> None:
    """One task for a block of deliveries (``events_publish``); each is claimed on its own."""
    for delivery_id in delivery_ids:
        delivery_attempt(delivery_id)


def deliveries_erase(*, organization_id: int, needles: list[str]) -> int:
    """LGPD erasure: deliveries whose payload names a customer (any of ``needles``: their
    public id, phone) keep their record but lose the payload and the receiver's answer; those
    not sent yet are never sent. Returns how many changed."""
    needles = [n for n in needles if n]
    if not needles:
        return 0
    mentions = Q()
    for needle in needles:
        mentions |= Q(payload__icontains=needle) | Q(response_body__icontains=needle)
    found = WebhookDelivery.objects.filter(mentions, organization_id=organization_id)
    erased = {"payload": {"erased": True}, "response_body": "", "request_headers": {}}
    unsent = [WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING]
    count = found.filter(status__in=unsent).update(
        status=WebhookDelivery.Status.FAILED,
        next_attempt_at=None,
        error=_("Not sent: the contact's data was erased."),
        **erased,
    )
    return count + found.update(**erased)


def event_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps(
        {
            "id": str(delivery.event_id),
            "type": delivery.event_type,
            "created_at": delivery.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "sequence": delivery.sequence,
            "data": delivery.payload,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


# --- Delivery --------------------------------------------------------------------------------


def delivery_attempt(delivery_id: int) -> None:
    """Send one delivery once (claimed, so two workers never send it together)."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .filter(
            Q(status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING])
            | Q(status=WebhookDelivery.Status.SENDING, last_attempt_at__lt=now - CLAIM_TTL)
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=WebhookDelivery.Status.SENDING, last_attempt_at=now)
    )
    if not claimed:
        return
    delivery = WebhookDelivery.objects.select_related("subscription", "organization").get(
        pk=delivery_id
    )
    subscription = delivery.subscription
    if not subscription.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED, error=_("The subscription is disabled.")
        )
        return
    body = event_body(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Porfin-Event": delivery.event_type,
        "X-Porfin-Delivery": str(delivery.code),
        "X-Porfin-Timestamp": str(timestamp),
        "X-Porfin-Signature": sign(subscription.secret, timestamp, body),
    }
    started = time.monotonic()
    status_code, response_text, error = None, "", ""
    try:
        url_check(subscription.url, resolve_host=False)  # the connection checks the address
        with waiting_outside(), egress.session() as http:
            response = http.post(
                subscription.url,
                data=body,
                headers=headers,
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        status_code, response_text = response.status_code, response.text[:RESPONSE_KEEP]
        if not 200 <= status_code < 300:
            error = _("The receiver answered %(status)d.") % {"status": status_code}
    except UnsafeURL as exc:
        error = str(exc)
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    duration_ms = int((time.monotonic() - started) * 1000)
    record = {
        "attempts": F("attempts") + 1,
        "request_headers": {k: v for k, v in headers.items() if k != "X-Porfin-Signature"},
        "response_status": status_code,
        "response_body": response_text,
        "duration_ms": duration_ms,
        "error": error,
    }
    if not error:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.SUCCEEDED,
            delivered_at=timezone.now(),
            next_attempt_at=None,
            **record,
        )
        WebhookSubscription.objects.filter(pk=subscription.pk, failure_streak__gt=0).update(
            failure_streak=0
        )
        return
    _attempt_failed(delivery, record)


def _attempt_failed(delivery: WebhookDelivery, record: dict) -> None:
    attempts = delivery.attempts + 1
    if attempts < MAX_ATTEMPTS:
        delay = retry_delay(attempts)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.RETRYING,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            **record,
        )
        tasks.enqueue_in(delay, "integrations.outgoing.delivery_attempt", delivery.pk)
    else:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED, next_attempt_at=None, **record
        )
    logger.info(
        "Webhook delivery %s failed (attempt %d): %s", delivery.pk, attempts, record["error"]
    )
    WebhookSubscription.objects.filter(pk=delivery.subscription_id).update(
        failure_streak=F("failure_streak") + 1
    )
    _disable_if_failing(delivery.subscription_id)


def retry_delay(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: 1, 2, 4 … minutes (``WEBHOOK_RETRY_BASE`` s)."""
    base = getattr(settings, "OUTGOING_WEBHOOKS_RETRY_BASE", BACKOFF_BASE)
    return base * 2 ** (attempts - 1)


def _disable_if_failing(subscription_id: int) -> None:
    limit = getattr(settings, "OUTGOING_WEBHOOKS_DISABLE_AFTER", DISABLE_AFTER_FAILURES)
    reason = _("Disabled after %(count)d failed deliveries in a row.") % {"count": limit}
    disabled = WebhookSubscription.objects.filter(
        pk=subscription_id, is_active=True, failure_streak__gte=limit
    ).update(is_active=False, disabled_reason=reason)
    if disabled:
        subscription = WebhookSubscription.objects.select_related("organization").get(
            pk=subscription_id
        )
        subscriptions_changed(subscription.organization_id)
        WebhookDelivery.objects.filter(
            subscription=subscription, status=WebhookDelivery.Status.RETRYING
        ).update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        _notify_admins(subscription)


def _notify_admins(subscription: WebhookSubscription) -> None:
    from accounts.models import Membership, Role

    organization = subscription.organization
    emails = list(
        Membership.objects.filter(organization=organization, role=Role.ADMIN).values_list(
            "user__email", flat=True
        )
    )
    if not emails:
        return
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    with translation.override(organization.language):
        send_mail(
            _("Porfin: a webhook was disabled"),
            _(
                "Deliveries to %(url)s kept failing, so Porfin stopped sending events to it.\n\n"
                "Fix the receiver, then enable the webhook again in Settings › Webhooks:\n%(link)s"
            )
            % {"url": subscription.url, "link": f"{base}/settings/webhooks/{subscription.code}/"},
            None,
            emails,
            fail_silently=True,
        )


def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the same event again (same id, so receivers can recognise a repeat) as a new delivery."""
    copy = WebhookDelivery.objects.create(
        organization_id=delivery.organization_id,
        subscription_id=delivery.subscription_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        sequence=delivery.sequence,
        payload=delivery.payload,
        next_attempt_at=timezone.now(),
    )
    tasks.enqueue("integrations.outgoing.delivery_attempt", copy.pk)
    return copy


def deliveries_retry_due() -> int:
    """Periodic: queue deliveries whose retry is due, and ones abandoned mid-send."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            Q(
                status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
                next_attempt_at__lte=now,
            )
            | Q(status=WebhookDelivery.Status.SENDING, last_attempt_at__lt=now - CLAIM_TTL)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    for pk in due:
        tasks.dispatch("integrations.outgoing.delivery_attempt", pk)
    WebhookDelivery.objects.filter(created_at__lt=now - DELIVERY_RETENTION).delete()
    return len(due)


tasks.register_periodic("integrations.outgoing.deliveries_retry_due", 60)
# The API's idempotency keys expire after a day (see accounts.api_auth).
tasks.register_periodic("accounts.api_auth.idempotency_keys_purge", 3600)


@receiver([post_save, post_delete], sender=WebhookSubscription, dispatch_uid="outgoing-subs-cache")
def _forget_cached_subscriptions(sender, instance, **kwargs):
    subscriptions_changed(instance.organization_id)
