"""Settings › Numbers: connect, inspect, edit, test, deactivate and delete WhatsApp numbers
without Django admin. Owners and admins edit; managers see (read-only); others get 403; another
organization's number is a 404. The domain work is in ``integrations.numbers``."""

import logging

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access
from integrations import numbers, selectors
from integrations import web as web_numbers
from integrations.errors import IntegrationError, UnsupportedError
from integrations.forms import NumberCreateForm, NumberEditForm
from integrations.models import WhatsAppNumber
from integrations.providers import capabilities_for, provider_for
from integrations.providers.cloud_api import CloudAPIProvider

logger = logging.getLogger(__name__)


def _number(request, code) -> WhatsAppNumber:
    return get_object_or_404(WhatsAppNumber, organization=request.organization, code=code)


def _testable(number: WhatsAppNumber) -> bool:
    """Numbers whose webhooks Meta's way (verify token + signature) can be self-tested."""
    try:
        return isinstance(provider_for(number), CloudAPIProvider)
    except UnsupportedError:  # a provider this installation does not have
        return False


@require_http_methods(["GET", "POST"])
@access.section_required("settings", edit=True)
def number_add(request):
    form = NumberCreateForm(request.POST or None, sandbox=settings.SANDBOX_ENABLED)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            number = numbers.number_create(
                organization=request.organization,
                name=data["name"],
                provider=data["provider"],
                phone_number_id=data["phone_number_id"],
                waba_id=data["waba_id"],
                access_token=data["access_token"],
                app_secret=data["app_secret"],
            )
        except numbers.CredentialsError as error:
            form.add_error(error.field, error.message)
        else:
            messages.success(request, _("%(name)s is connected.") % {"name": number.name})
            return redirect("number_detail", code=number.code)
    status = 400 if request.method == "POST" else 200
    return render(request, "integrations/number_add.html", {"form": form}, status=status)


@require_GET
@access.section_required("settings")
def number_detail(request, code):
    number = _number(request, code)
    health = numbers.numbers_health([number])[number.pk]
    context = {
        "number": number,
        "health": health,
        "webhook_url": selectors.webhook_url(request, number),
        "capabilities": capabilities_for(number),
        "testable": _testable(number),
        "in_use": numbers.usage(number),
        "can_edit": access.can_edit(request.membership, "settings"),
        "daily_sends": web_numbers.daily_sends(number),
    }
    return render(request, "integrations/number_detail.html", context)


@require_http_methods(["GET", "POST"])
@access.section_required("settings", edit=True)
def number_edit(request, code):
    number = _number(request, code)
    credentials = number.provider == WhatsAppNumber.Provider.CLOUD_API
    form = NumberEditForm(
        request.POST or None,
        initial={"name": number.name, "daily_cap": number.daily_cap},
        credentials=credentials,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            numbers.number_update(
                number=number,
                name=data["name"],
                access_token=data.get("access_token", ""),
                app_secret=data.get("app_secret", ""),
                daily_cap=data.get("daily_cap"),
            )
        except numbers.CredentialsError as error:
            form.add_error(error.field, error.message)
        else:
            messages.success(request, _("The number was saved."))
            return redirect("number_detail", code=number.code)
    status = 400 if request.method == "POST" else 200
    context = {"number": number, "form": form}
    return render(request, "integrations/number_edit.html", context, status=status)


@require_POST
@access.section_required("settings", edit=True)
def number_webhook_test(request, code):
    number = _number(request, code)
    if not _testable(number):
        messages.error(request, _("This kind of number has no webhook to test."))
        return redirect("number_detail", code=number.code)
    checks = numbers.webhook_self_test(number, selectors.webhook_url(request, number))
    context = {
        "number": number,
        "health": numbers.numbers_health([number], live=False)[number.pk],
        "webhook_url": selectors.webhook_url(request, number),
        "capabilities": capabilities_for(number),
        "testable": True,
        "in_use": numbers.usage(number),
        "can_edit": True,
        "daily_sends": web_numbers.daily_sends(number),
        "checks": checks,
        "checks_ok": all(check.ok for check in checks),
    }
    return render(request, "integrations/number_detail.html", context)


@require_POST
@access.section_required("settings", edit=True)
def number_refresh(request, code):
    number = _number(request, code)
    try:
        numbers.number_refresh(number=number)
    except (numbers.CredentialsError, IntegrationError) as error:
        messages.error(request, getattr(error, "message", str(error)))
    else:
        messages.success(request, _("Quality rating and messaging limit updated."))
    return redirect("number_detail", code=number.code)


@require_POST
@access.section_required("settings", edit=True)
def number_toggle(request, code):
    number = _number(request, code)
    numbers.number_set_active(number=number, active=not number.is_active)
    if number.is_active:
        messages.success(request, _("%(name)s is active again.") % {"name": number.name})
    else:
        messages.success(
            request,
            _("%(name)s is deactivated: its chats stay, nothing is sent or received through it.")
            % {"name": number.name},
        )
    return redirect("number_detail", code=number.code)


@require_http_methods(["GET", "POST"])
@access.section_required("settings", edit=True)
def number_delete(request, code):
    number = _number(request, code)
    in_use = numbers.usage(number)
    if request.method == "POST" and not in_use:
        try:
            numbers.number_delete(number=number)
        except ValueError:
            in_use = numbers.usage(number)
        else:
            messages.success(request, _("%(name)s was deleted.") % {"name": number.name})
            return redirect("number_list")
    status = 409 if request.method == "POST" else 200
    context = {"number": number, "in_use": in_use}
    return render(request, "integrations/number_delete.html", context, status=status)
