import functools
import logging
import re
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import Http404, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access
from integrations import ingest, selectors, services
from integrations.errors import IntegrationError
from integrations.forms import SandboxMessageForm
from integrations.models import WhatsAppNumber
from integrations.numbers import numbers_health
from integrations.providers import capabilities_for, provider_for

logger = logging.getLogger(__name__)


@require_GET
@access.section_required("settings")
def number_list(request):
    numbers = selectors.numbers_of(request.organization)
    templates = selectors.templates_by_number(request.organization)
    health = numbers_health(numbers)
    for number in numbers:
        number.webhook_url = selectors.webhook_url(request, number)
        number.synced_templates = templates.get(number.pk, [])
        number.capabilities = capabilities_for(number)
        number.health = health[number.pk]
    context = {"numbers": numbers, "can_edit": access.can_edit(request.membership, "settings")}
    return render(request, "integrations/number_list.html", context)


@require_POST
@access.section_required("settings", edit=True)
def number_templates_sync(request, code):
    """Fetch the number's message templates from its WhatsApp Business Account."""
    number = get_object_or_404(WhatsAppNumber, organization=request.organization, code=code)
    try:
        count = services.templates_sync(number=number)
    except (IntegrationError, requests.RequestException) as error:
        logger.warning("Template sync for number %s failed: %s", number.pk, error)
        messages.error(
            request,
            _("Could not sync the templates of %(number)s: %(error)s")
            % {"number": number.name, "error": _(getattr(error, "message", str(error)))},
        )
    else:
        messages.success(
            request,
            ngettext(
                "%(count)d template synced for %(number)s.",
                "%(count)d templates synced for %(number)s.",
                count,
            )
            % {"count": count, "number": number.name},
        )
    return redirect("number_list")


@csrf_exempt
@require_http_methods(["GET", "POST"])
async def whatsapp_webhook(request, key):
    """Meta's callback for one number: verification (GET) and signed deliveries (POST).

    A POST passes ``ingest.delivery_check`` (the checks and answers it shares with the
    PostgreSQL receiver: missing signature 401, wrong one 403, too large 413, unknown key 404)
    before anything is stored, then is written to the durable log and acknowledged at once;
    parsing happens in a task.

    Answers, given that Meta re-delivers anything that is not a 200 for up to 7 days:
    - Signed but malformed JSON, or a shape we do not recognise: stored with the error and
      answered **200**, not 400. The signature proves Meta sent these exact bytes, so a retry
      would only repeat them for a week (and a run of failures gets the webhook flagged); the
      stored row keeps them for inspection and reprocessing once the parser learns the shape.
    - The database unreachable: 503, so that Meta keeps the delivery and retries it.
    Never a 500 for anything the sender controls.
    """
    if request.method == "GET":
        number = await ingest.webhook_number(key)
        if isinstance(number, ingest.Refusal):
            return _refusal(number)
        return _verify(request, number)
    headers = {name.lower(): value for name, value in request.headers.items()}
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


async def _body(request, limit: int) -> bytes | None:
    """The body Django has already spooled; None when it is over ``DATA_UPLOAD_MAX_MEMORY_SIZE``
    (``delivery_check`` applies ``limit`` itself)."""
    try:
        return request.body
    except RequestDataTooBig:
        return None


def _refusal(refusal: ingest.Refusal) -> HttpResponse:
    return HttpResponse(refusal.reason, status=refusal.status, content_type="text/plain")


def _verify(request, number):
    """The provider's webhook subscription check (Meta: ``hub.mode``/``hub.verify_token``)."""
    answer = provider_for(number).answer_handshake(request.GET)
    if answer is not None:
        return HttpResponse(answer, content_type="text/plain")
    return HttpResponseForbidden("Verification token mismatch", content_type="text/plain")


@require_http_methods(["GET", "POST"])
@access.section_required("chats")
def sandbox_phone(request):
    """Act as a customer of one of the organization's sandbox numbers: what you send here
    arrives through the real signed webhook path, like a message from a phone; the page shows
    the customer's side of the conversation (their messages with whether Porfin's webhook took
    them, and the business's answers, whose buttons and list menus can be tapped)."""
    if not settings.SANDBOX_ENABLED:
        raise Http404
    numbers = WhatsAppNumber.objects.filter(
        organization=request.organization, provider=WhatsAppNumber.Provider.SANDBOX
    )
    initial = {}
    if request.method == "GET":
        chosen = _one_of(numbers, request.GET.get("number"))
        initial = {
            "number": chosen,
            "phone": request.GET.get("phone") or "5511999990000",
            "profile_name": request.GET.get("name", "")[:100],
        }
        initial = {k: v for k, v in initial.items() if v}
    form = SandboxMessageForm(
        request.POST or None, request.FILES or None, numbers=numbers, initial=initial
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = services.sandbox_customer_send(number=data["number"], spec=form.to_spec())
            except requests.RequestException as error:
                form.add_error(
                    None, _("The sandbox did not accept the message: %(error)s") % {"error": error}
                )
            else:
                _tell_delivery(request, result, data["phone"])
                query = urlencode(
                    {
                        "number": data["number"].pk,
                        "phone": data["phone"],
                        "name": data["profile_name"],
                    }
                )
                return redirect(f"{reverse('sandbox_phone')}?{query}")
        status = 400
    number = form["number"].value() if request.method == "POST" else form.initial.get("number")
    number = _one_of(numbers, getattr(number, "pk", number))
    if number is None and len(numbers) == 1:
        number = numbers[0]
    phone = (form["phone"].value() or "") if request.method == "POST" else initial.get("phone")
    context = {"form": form, "phone_number": number, "phone": phone or "5511999990000"}
    context.update(_sandbox_conversation(number, context["phone"]))
    if request.GET.get("fragment"):
        return render(request, "integrations/_sandbox_conversation.html", context)
    return render(request, "integrations/sandbox_phone.html", context, status=status)


def _one_of(numbers, pk):
    """The number with this id among ``numbers`` (the organization's), or None for anything
    else: another organization's id, a code, garbage."""
    pk = str(pk or "")
    return numbers.filter(pk=int(pk)).first() if pk.isdigit() else None


def _tell_delivery(request, result: dict, phone: str) -> None:
    """Say "sent" only when Porfin's webhook took the message (HTTP 200)."""
    code = result.get("webhook_status")
    if code == 200:
        messages.success(request, _("Sent as %(phone)s.") % {"phone": phone})
    elif code is None:
        messages.error(
            request,
            _("Porfin's webhook could not be reached; the sandbox retries a few times."),
        )
    else:
        messages.error(
            request,
            _(
                "Porfin's webhook refused the message (HTTP %(status)s); the sandbox retries a few times."
            )
            % {"status": code},
        )


def _sandbox_conversation(number, phone: str) -> dict:
    from integrations import sandbox_phone as phone_view

    if number is None or not re.fullmatch(r"\d{8,15}", phone or ""):
        return {"bubbles": [], "conversation_error": ""}
    try:
        return {"bubbles": phone_view.conversation(number, phone), "conversation_error": ""}
    except requests.RequestException as error:
        return {
            "bubbles": [],
            "conversation_error": _("The sandbox could not be read: %(error)s") % {"error": error},
        }


# --- Outgoing webhooks (Settings › Webhooks) ---------------------------------------------------

WEBHOOK_DELIVERIES_SHOWN = 50


def _subscription_for(request, code):
    from integrations.models import WebhookSubscription

    return get_object_or_404(WebhookSubscription, organization=request.organization, code=code)


def _webhook_list_page(request, form, status=200):
    from integrations.models import WebhookSubscription

    context = {
        "subscriptions": WebhookSubscription.objects.filter(organization=request.organization),
        "form": form,
        "can_edit": access.can_edit(request.membership, "settings"),
    }
    return render(request, "integrations/webhook_list.html", context, status=status)


@require_GET
@access.section_required("settings")
def webhook_list(request):
    from integrations.forms import WebhookSubscriptionForm

    return _webhook_list_page(request, WebhookSubscriptionForm())


@require_POST
@access.section_required("settings", edit=True)
def webhook_create(request):
    from integrations import outgoing
    from integrations.forms import WebhookSubscriptionForm

    form = WebhookSubscriptionForm(request.POST)
    if form.is_valid():
        try:
            subscription = outgoing.subscription_create(
                organization=request.organization,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                created_by=request.user,
            )
        except outgoing.UnsafeURL as error:
            form.add_error("url", str(error))
        else:
            return redirect("webhook_detail", code=subscription.code)
    return _webhook_list_page(request, form, status=400)


@require_GET
@access.section_required("settings")
def webhook_detail(request, code):
    subscription = _subscription_for(request, code)
    context = {
        "subscription": subscription,
        "deliveries": subscription.deliveries.order_by("-created_at", "-id")[
            :WEBHOOK_DELIVERIES_SHOWN
        ],
        "can_edit": access.can_edit(request.membership, "settings"),
    }
    return render(request, "integrations/webhook_detail.html", context)


@require_POST
@access.section_required("settings", edit=True)
def webhook_toggle(request, code):
    from integrations import outgoing

    subscription = _subscription_for(request, code)
    if subscription.is_active:
        outgoing.subscription_disable(subscription=subscription, reason=_("Disabled by an admin."))
    else:
        outgoing.subscription_enable(subscription=subscription)
    return redirect("webhook_detail", code=subscription.code)


@require_POST
@access.section_required("settings", edit=True)
def webhook_delete(request, code):
    subscription = _subscription_for(request, code)
    subscription.delete()
    messages.success(request, _("The webhook was deleted."))
    return redirect("webhook_list")


@require_POST
@access.section_required("settings", edit=True)
def webhook_delivery_resend(request, code):
    from integrations import outgoing
    from integrations.models import WebhookDelivery

    delivery = get_object_or_404(
        WebhookDelivery.objects.select_related("subscription"),
        organization=request.organization,
        code=code,
    )
    outgoing.delivery_resend(delivery=delivery)
    messages.success(request, _("The event was queued to be sent again."))
    return redirect("webhook_detail", code=delivery.subscription.code)
