"""WhatsApp Web numbers (Evolution API): the webhook receiver and the "connect by QR" pages."""

import functools
import logging
from datetime import timedelta

import requests
from django.conf import settings
from django.contrib import messages
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access
from integrations import ingest, sandbox_web, services, web
from integrations.errors import IntegrationError
from integrations.forms_web import WebCustomerForm, WebNumberForm, WebTextForm
from integrations.models import WhatsAppNumber
from integrations.providers.evolution import webhook_url
from integrations.views import _body, _refusal

logger = logging.getLogger(__name__)
STATE_ASK_AFTER = timedelta(seconds=10)


@csrf_exempt
@require_POST
async def evolution_webhook(request, key, secret=None):
    """Evolution API's deliveries for one WhatsApp Web number.

    Evolution signs nothing, so the number's secret must come with each delivery (in the path
    Porfin configures, ``/webhooks/evolution/<key>/<secret>/``, or an ``apikey`` header):
    without it 401, a wrong one 403, and nothing is stored. Then the same durable path as Meta's
    deliveries: stored before the 200, processed once by the inbound queue.
    """
    headers = {name.lower(): value for name, value in request.headers.items()}
    ingest.with_path_secret(headers, secret)
    checked = await ingest.delivery_check(key, headers, functools.partial(_body, request))
    if isinstance(checked, ingest.Refusal):
        return _refusal(checked)
    try:
        event = await ingest.database(
            services.webhook_event_store, number=checked.number, body=checked.body, headers=headers
        )
    except DatabaseError:
        logger.exception("Webhook for number %s could not be stored", checked.number.pk)
        return _refusal(ingest.UNAVAILABLE)
    return JsonResponse({"received": event.pk})


def _web_number(request, code) -> WhatsAppNumber:
    return get_object_or_404(
        WhatsAppNumber,
        organization=request.organization,
        code=code,
        provider=WhatsAppNumber.Provider.EVOLUTION,
    )


@require_http_methods(["GET", "POST"])
@access.section_required("settings", edit=True)
def web_number_add(request):
    """Name a new WhatsApp Web number; the next page shows its QR code."""
    form = WebNumberForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        number = web.web_number_create(
            organization=request.organization,
            name=form.cleaned_data["name"],
            server=form.cleaned_data.get("server"),
            daily_cap=form.cleaned_data.get("daily_cap"),
        )
        _connect(request, number)
        return redirect("web_number_connect", code=number.code)
    status = 400 if request.method == "POST" else 200
    return render(request, "integrations/web/number_add.html", {"form": form}, status=status)


def _connect(request, number) -> None:
    try:
        web.web_number_connect(number)
    except IntegrationError as error:
        logger.warning("Connecting WhatsApp Web number %s failed: %s", number.pk, error)
        messages.error(
            request,
            _("Could not reach the Evolution API server: %(error)s") % {"error": _(error.message)},
        )


@require_GET
@access.section_required("settings", edit=True)
def web_number_connect(request, code):
    """The number's QR code and state; the state panel refreshes itself until paired."""
    return _connect_page(request, _web_number(request, code), WebTextForm())


def _connect_page(request, number, text_form, status=200):
    context = {
        "number": number,
        "webhook_url": webhook_url(number),
        "texts": number.templates.filter(category=web.TEXT_CATEGORY),
        "text_form": text_form,
        "daily_sends": web.daily_sends(number),
    }
    return render(request, "integrations/web/connect.html", context, status=status)


@require_POST
@access.section_required("settings", edit=True)
def web_number_text_save(request, code):
    """Save a message text that campaigns on this number can send (no templates here)."""
    number = _web_number(request, code)
    form = WebTextForm(request.POST)
    if not form.is_valid():
        return _connect_page(request, number, form, status=400)
    web.web_text_save(number=number, name=form.cleaned_data["name"], body=form.cleaned_data["body"])
    messages.success(request, _("The message text was saved."))
    return redirect("web_number_connect", code=number.code)


@require_GET
@access.section_required("settings", edit=True)
def web_number_state(request, code):
    """The state panel alone (htmx polls it every 2 s while the page waits for a phone).

    Webhooks move the state; if none came for a while (Evolution cannot reach
    ``EVOLUTION_WEBHOOK_BASE_URL``?), the server is asked directly, at most every 10 s."""
    number = _web_number(request, code)
    updated = number.connection_updated_at
    if number.connection_state != "open" and (
        updated is None or timezone.now() - updated > STATE_ASK_AFTER
    ):
        try:
            web.web_number_refresh(number)
        except IntegrationError as error:
            logger.info("State of WhatsApp Web number %s not read: %s", number.pk, error)
    return render(request, "integrations/web/_state.html", {"number": number})


@require_POST
@access.section_required("settings", edit=True)
def web_number_reconnect(request, code):
    number = _web_number(request, code)
    _connect(request, number)
    return redirect("web_number_connect", code=number.code)


@require_POST
@access.section_required("settings", edit=True)
def web_number_logout(request, code):
    number = _web_number(request, code)
    try:
        web.web_number_logout(number)
    except IntegrationError as error:
        messages.error(request, _("Could not disconnect: %(error)s") % {"error": _(error.message)})
    else:
        messages.success(request, _("The WhatsApp Web number was disconnected."))
    return redirect("web_number_connect", code=number.code)


# --- The sandbox phone, for WhatsApp Web numbers on the Evolution emulator ----------------------


def _emulated_numbers(request):
    return [
        number
        for number in WhatsAppNumber.objects.filter(
            organization=request.organization, provider=WhatsAppNumber.Provider.EVOLUTION
        ).order_by("name")
        if sandbox_web.is_emulated(number)
    ]


def _web_phone(request, status=200, **context):
    numbers = _emulated_numbers(request)
    states = sandbox_web.phone_states()
    for number in numbers:
        number.phone_state = states.get(number.evolution_instance, "close")
        number.phone_sent = sandbox_web.sent_to_phone(number)
    context = {"numbers": numbers, "form": WebCustomerForm(), **context}
    return render(request, "integrations/web/_sandbox_phone.html", context, status=status)


@require_GET
@access.section_required("chats")
def web_sandbox_phone(request):
    """The sandbox phone's WhatsApp Web part: pair a number waiting for its QR, write as a
    customer, and see what the business sent to the emulated phone."""
    if not settings.SANDBOX_ENABLED:
        raise Http404
    return _web_phone(request)


@require_POST
@access.section_required("chats")
def web_sandbox_pair(request, code):
    if not settings.SANDBOX_ENABLED:
        raise Http404
    number = _web_number(request, code)
    try:
        sandbox_web.pair(number, phone=request.POST.get("phone", ""))
    except requests.RequestException as error:
        return _web_phone(request, status=502, error=str(error))
    return _web_phone(request, paired=number)


@require_POST
@access.section_required("chats")
def web_sandbox_send(request, code):
    if not settings.SANDBOX_ENABLED:
        raise Http404
    number = _web_number(request, code)
    form = WebCustomerForm(request.POST)
    if not form.is_valid():
        return _web_phone(request, status=400, error=form.errors.as_text())
    try:
        sandbox_web.customer_send(number, **form.cleaned_data)
    except requests.RequestException as error:
        return _web_phone(request, status=502, error=str(error))
    return _web_phone(request, sent=number)
