"""Connecting WhatsApp numbers without Django admin (Settings › Numbers): the live credential
check, create / update / deactivate / delete, the webhook self-test, and each number's health.

Apps above ``integrations`` know what a number is used for (chats, messages): they plug in
through ``register_health_source`` (last inbound message, last failed send) and
``register_usage`` (what deleting the number would destroy), so nothing here imports them.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from django.db import transaction
from django.utils.translation import gettext as _

from integrations import services
from integrations.errors import AuthError, IntegrationError, UnsupportedError
from integrations.models import WebhookEvent, WhatsAppNumber
from integrations.providers import provider_for
from integrations.whatsapp.signature import sign

logger = logging.getLogger(__name__)


# --- Health -------------------------------------------------------------------------------------


@dataclass
class Health:
    """What an owner wants to know about a number at a glance. Empty values: nothing known."""

    last_inbound: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    connection: str = ""  # the provider's connection state, "" when the provider has none
    connected: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# A source answers for a batch of numbers: {number_id: {"last_inbound": dt} or
# {"last_error": str, "last_error_at": dt}}; the newest of each wins.
HealthSource = Callable[[list[WhatsAppNumber]], Mapping[int, Mapping[str, Any]]]
_health_sources: list[HealthSource] = []
# A usage source counts what depends on a number: (label, count); a number in use is never deleted.
UsageSource = Callable[[WhatsAppNumber], tuple[str, int]]
_usage_sources: list[UsageSource] = []


def register_health_source(source: HealthSource) -> HealthSource:
    if source not in _health_sources:
        _health_sources.append(source)
    return source


def register_usage(source: UsageSource) -> UsageSource:
    if source not in _usage_sources:
        _usage_sources.append(source)
    return source


def _webhook_errors(numbers: list[WhatsAppNumber]) -> dict[int, dict[str, Any]]:
    """The latest webhook delivery that could not be processed, per number (our own log)."""
    found: dict[int, dict[str, Any]] = {}
    for number in numbers:
        event = (
            WebhookEvent.objects.filter(number=number)
            .exclude(error="")
            .order_by("-received_at")
            .only("error", "received_at")
            .first()
        )
        if event is not None:
            found[number.pk] = {"last_error": event.error, "last_error_at": event.received_at}
    return found


def connection_state(number: WhatsAppNumber) -> tuple[str, bool | None]:
    """(label, connected) from the provider's optional ``connection_state()``; ("", None) when the
    provider has no such notion (the Cloud API is always "connected" while its token works)."""
    try:
        method = getattr(provider_for(number), "connection_state", None)
        if method is None:
            return "", None
        state = method()
    except UnsupportedError:
        return "", None
    except (IntegrationError, requests.RequestException) as error:
        return _("Unknown (%(error)s)") % {"error": error}, False
    if isinstance(state, Mapping):
        label = str(state.get("label") or state.get("state") or "")
        connected = state.get("connected")
    else:
        label = str(getattr(state, "label", "") or getattr(state, "state", "") or state or "")
        connected = getattr(state, "connected", None)
    if connected is None:
        connected = label.lower() in ("open", "connected")
    return label, bool(connected)


def numbers_health(numbers: Iterable[WhatsAppNumber], *, live: bool = True) -> dict[int, Health]:
    """Each number's health; ``live`` also asks providers for their connection state."""
    numbers = list(numbers)
    health = {number.pk: Health() for number in numbers}
    for source in [_webhook_errors, *_health_sources]:
        try:
            found = source(numbers)
        except Exception:  # one broken source must not hide the page
            logger.exception("Number health source %r failed", source)
            continue
        for number_id, data in found.items():
            entry = health.get(number_id)
            if entry is None:
                continue
            inbound = data.get("last_inbound")
            if inbound and (entry.last_inbound is None or inbound > entry.last_inbound):
                entry.last_inbound = inbound
            error_at = data.get("last_error_at")
            if data.get("last_error") and (
                entry.last_error_at is None or (error_at and error_at > entry.last_error_at)
            ):
                entry.last_error, entry.last_error_at = data["last_error"], error_at
    if live:
        for number in numbers:
            if number.is_active:
                label, connected = connection_state(number)
                health[number.pk].connection, health[number.pk].connected = label, connected
    return health


def usage(number: WhatsAppNumber) -> list[tuple[str, int]]:
    """What depends on ``number`` (e.g. ("chats", 12)); empty when it can be deleted."""
    found = []
    for source in _usage_sources:
        label, count = source(number)
        if count:
            found.append((label, count))
    return found


# --- Live credential check ----------------------------------------------------------------------


class CredentialsError(Exception):
    """The credentials did not pass the live check; ``field`` names the form field to blame
    (None: the whole form, e.g. WhatsApp unreachable)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class NumberFacts:
    """What the provider told us about a number whose credentials work."""

    display_phone_number: str
    verified_name: str
    quality_rating: str
    messaging_limit: str


def credentials_check(number: WhatsAppNumber) -> NumberFacts:
    """Ask the provider about ``number`` (unsaved is fine) with its credentials: the phone number
    (``GET /{phone-number-id}``), then its WhatsApp Business Account (its templates). Raises
    ``CredentialsError`` with the field to blame; never retries (the owner is waiting)."""
    provider = provider_for(number, retry_inline=False)
    client = getattr(provider, "client", None)
    if client is None:
        raise CredentialsError(_("This kind of number has no credentials to check."))
    try:
        info = client.get_phone_number()
    except AuthError as error:
        raise CredentialsError(
            _("WhatsApp refused this access token: %(error)s") % {"error": _detail(error)},
            "access_token",
        ) from error
    except IntegrationError as error:
        if error.retryable:
            raise CredentialsError(_unreachable(error)) from error
        raise CredentialsError(
            _("No phone number with this ID can be reached with this token: %(error)s")
            % {"error": _detail(error)},
            "phone_number_id",
        ) from error
    if number.waba_id:
        try:
            client.list_templates(page_size=1)
        except IntegrationError as error:
            if error.retryable:
                raise CredentialsError(_unreachable(error)) from error
            raise CredentialsError(
                _("This WhatsApp Business Account cannot be reached with this token: %(error)s")
                % {"error": _detail(error)},
                "waba_id",
            ) from error
    return NumberFacts(
        display_phone_number=info.display_phone_number,
        verified_name=info.verified_name,
        quality_rating=info.quality_rating if info.quality_rating != "UNKNOWN" else "",
        messaging_limit=info.messaging_limit_tier,
    )


def _detail(error: IntegrationError) -> str:
    return str(error)


def _unreachable(error: IntegrationError) -> str:
    return _("Could not reach WhatsApp to check the number (%(error)s). Try again shortly.") % {
        "error": _detail(error)
    }


def _apply_facts(number: WhatsAppNumber, facts: NumberFacts) -> None:
    if facts.display_phone_number:
        number.display_phone_number = facts.display_phone_number[:32]
    number.quality_rating = facts.quality_rating[:20]
    number.messaging_limit = facts.messaging_limit[:40]


# --- Writes -------------------------------------------------------------------------------------


def number_create(
    *,
    organization,
    name: str,
    provider: str,
    phone_number_id: str = "",
    waba_id: str = "",
    access_token: str = "",
    app_secret: str = "",
) -> WhatsAppNumber:
    """Connect a number after its credentials pass the live check (``CredentialsError`` if not).

    A sandbox number gets made-up ids and secrets and is registered with the local emulator, so
    an owner can try Porfin without Meta; it is checked through the same client calls."""
    if provider == WhatsAppNumber.Provider.SANDBOX:
        phone_number_id = _free_sandbox_id()
        waba_id = str(10**14 + secrets.randbelow(9 * 10**14))
        access_token = "sandbox-" + secrets.token_urlsafe(24)
        app_secret = secrets.token_urlsafe(24)
    number = WhatsAppNumber(
        organization=organization,
        name=name,
        provider=provider,
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        access_token=access_token,
        app_secret=app_secret,
        display_phone_number=_sandbox_display(phone_number_id)
        if provider == WhatsAppNumber.Provider.SANDBOX
        else "",
    )
    if provider == WhatsAppNumber.Provider.SANDBOX:
        try:
            services.sandbox_register(number, force=True)
        except requests.RequestException as error:
            raise CredentialsError(
                _("The sandbox could not be reached: %(error)s") % {"error": error}
            ) from error
    _apply_facts(number, credentials_check(number))
    if not number.display_phone_number:
        number.display_phone_number = phone_number_id[:32]
    number.save()
    return number


def number_update(
    *,
    number: WhatsAppNumber,
    name: str,
    access_token: str = "",
    app_secret: str = "",
    daily_cap: int | None | object = ...,
) -> WhatsAppNumber:
    """Rename, set the daily cap (None: the default, see ``integrations.web.daily_cap_for``;
    omitted: unchanged), and rotate the token or secret (blank keeps the current one). A new
    token is checked live before it replaces the old one."""
    number.name = name
    fields = ["name"]
    if daily_cap is not ...:
        number.daily_cap = daily_cap
        fields.append("daily_cap")
    if access_token:
        candidate = WhatsAppNumber(
            pk=number.pk,
            organization_id=number.organization_id,
            provider=number.provider,
            phone_number_id=number.phone_number_id,
            waba_id=number.waba_id,
            access_token=access_token,
            app_secret=number.app_secret,
            webhook_key=number.webhook_key,
            verify_token=number.verify_token,
            display_phone_number=number.display_phone_number,
        )
        if number.provider == WhatsAppNumber.Provider.SANDBOX:
            services.sandbox_register(candidate, force=True)
        _apply_facts(number, credentials_check(candidate))
        number.access_token = access_token
        fields += ["access_token", "display_phone_number", "quality_rating", "messaging_limit"]
    if app_secret:
        number.app_secret = app_secret
        fields.append("app_secret")
    number.save(update_fields=fields)
    if number.provider == WhatsAppNumber.Provider.SANDBOX and (access_token or app_secret):
        services.sandbox_register(number, force=True)
    services.forget_webhook_number(number)
    return number


def number_refresh(*, number: WhatsAppNumber) -> WhatsAppNumber:
    """Read the quality rating and messaging limit tier again from the provider."""
    _apply_facts(number, credentials_check(number))
    number.save(update_fields=["display_phone_number", "quality_rating", "messaging_limit"])
    return number


def number_set_active(*, number: WhatsAppNumber, active: bool) -> None:
    """A deactivated number keeps its chats and history; its webhook answers 404 and nothing is
    sent through it until it is activated again."""
    number.is_active = active
    number.save(update_fields=["is_active"])
    services.forget_webhook_number(number)


def number_delete(*, number: WhatsAppNumber) -> None:
    """Delete a number nothing depends on; refuses (``ValueError``) one with chats: deactivate
    it instead, so no conversation is ever lost by a click."""
    with transaction.atomic():
        in_use = usage(number)
        if in_use:
            raise ValueError(in_use)
        services.forget_webhook_number(number)
        number.delete()


def _free_sandbox_id() -> str:
    while True:
        candidate = "9" + str(10**13 + secrets.randbelow(9 * 10**13))
        if not WhatsAppNumber.objects.filter(phone_number_id=candidate).exists():
            return candidate


def _sandbox_display(phone_number_id: str) -> str:
    return "+55 11 9" + phone_number_id[-4:] + "-" + phone_number_id[-8:-4]


# --- Webhook self-test --------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    label: str
    ok: bool
    detail: str


def webhook_self_test(number: WhatsAppNumber, url: str) -> list[Check]:
    """Call the number's webhook URL the way Meta does, from this server: the subscription
    handshake (GET with the verify token must echo the challenge) and a delivery signed with the
    app secret (must be accepted with 200). It proves the URL reaches this installation (through
    ``PUBLIC_BASE_URL`` and any proxy) and the number's webhook answers; it cannot prove Meta
    reaches the URL from the internet, nor that Meta's dashboard holds the same verify token and
    app secret, nor that the app is subscribed to the WABA. The test delivery carries no
    message: nothing reaches the inbox."""
    checks = []
    challenge = secrets.token_hex(8)
    try:
        response = requests.get(
            url,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": number.verify_token,
                "hub.challenge": challenge,
            },
            timeout=10,
            allow_redirects=False,
        )
        ok = response.status_code == 200 and response.text.strip() == challenge
        detail = (
            _("The URL echoed the challenge.")
            if ok
            else _("HTTP %(status)s: %(body)s")
            % {"status": response.status_code, "body": response.text[:200]}
        )
    except requests.RequestException as error:
        ok, detail = False, _("Unreachable: %(error)s") % {"error": type(error).__name__}
    checks.append(Check(_("Verification (verify token)"), ok, detail))
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": number.waba_id or "0", "time": int(time.time()), "changes": []}],
        },
        separators=(",", ":"),
    ).encode()
    try:
        response = requests.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(body, number.app_secret),
                "User-Agent": "porfin-webhook-test",
            },
            timeout=10,
            allow_redirects=False,
        )
        ok = response.status_code == 200
        detail = (
            _("A delivery signed with the app secret was accepted.")
            if ok
            else _("HTTP %(status)s: %(body)s")
            % {"status": response.status_code, "body": response.text[:200]}
        )
    except requests.RequestException as error:
        ok, detail = False, _("Unreachable: %(error)s") % {"error": type(error).__name__}
    checks.append(Check(_("Signed delivery (app secret)"), ok, detail))
    return checks
