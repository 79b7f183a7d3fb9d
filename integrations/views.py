import hmac
import logging

import requests
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts import access
from integrations import selectors, services
from integrations.forms import SandboxMessageForm
from integrations.models import WhatsAppNumber
from integrations.whatsapp import signature

logger = logging.getLogger(__name__)


@require_GET
@access.section_required("settings")
def number_list(request):
    numbers = selectors.numbers_of(request.organization)
    for number in numbers:
        number.webhook_url = selectors.webhook_url(request, number)
    return render(request, "integrations/number_list.html", {"numbers": numbers})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request, key):
    """Meta's callback for one number: verification (GET) and signed deliveries (POST).

    A POST is checked against this number's app secret before anything else, then stored and
    acknowledged at once; parsing happens in a task. A body that is signed but not JSON we can
    parse is still stored (and answered 200): Meta would only retry the same bytes for days.
    """
    number = WhatsAppNumber.objects.filter(webhook_key=key, is_active=True).first()
    if number is None:
        return HttpResponse("Unknown webhook", status=404, content_type="text/plain")
    if request.method == "GET":
        return _verify(request, number)
    length = int(request.headers.get("content-length") or 0)
    if length > settings.WEBHOOK_MAX_BODY_BYTES:
        return HttpResponse("Payload too large", status=413, content_type="text/plain")
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return HttpResponse("Payload too large", status=413, content_type="text/plain")
    header = request.headers.get("x-hub-signature-256")
    if not header:
        return HttpResponse("Missing X-Hub-Signature-256", status=401, content_type="text/plain")
    if not signature.verify(body, header, number.app_secret):
        logger.warning("Webhook for number %s: bad signature", number.pk)
        return HttpResponseForbidden("Invalid signature", content_type="text/plain")
    headers = {name.lower(): value for name, value in request.headers.items()}
    event = services.webhook_event_store(number=number, body=body, headers=headers)
    return JsonResponse({"received": event.pk})


def _verify(request, number):
    mode = request.GET.get("hub.mode")
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    if mode == "subscribe" and hmac.compare_digest(token.encode(), number.verify_token.encode()):
        return HttpResponse(challenge, content_type="text/plain")
    return HttpResponseForbidden("Verification token mismatch", content_type="text/plain")


@require_http_methods(["GET", "POST"])
@access.section_required("chats")
def sandbox_phone(request):
    """Act as a customer of one of the organization's sandbox numbers: what you send here
    arrives through the real signed webhook path, like a message from a phone."""
    if not settings.SANDBOX_ENABLED:
        raise Http404
    numbers = WhatsAppNumber.objects.filter(
        organization=request.organization, provider=WhatsAppNumber.Provider.SANDBOX
    )
    form = SandboxMessageForm(request.POST or None, request.FILES or None, numbers=numbers)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = services.sandbox_customer_send(
                number=form.cleaned_data["number"], spec=form.to_spec()
            )
            messages.success(
                request, _("Sent as %(phone)s.") % {"phone": form.cleaned_data["phone"]}
            )
        except requests.RequestException as error:
            form.add_error(
                None, _("The sandbox did not accept the message: %(error)s") % {"error": error}
            )
    status = 400 if request.method == "POST" and not form.is_valid() else 200
    return render(
        request, "integrations/sandbox_phone.html", {"form": form, "result": result}, status=status
    )
