"""The agenda settings pages (in the app, not Django admin): services, professionals with
their weekly hours and exceptions, the organization's opening hours and holidays, and the
booking rules. Receptionists edit them (``access.settings_required``); forms answer htmx posts
with the form and its errors (422) and never save half of a page."""

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Holiday
from appointments import access
from appointments.models import AgendaException, AgendaSettings, Professional, Service
from appointments.settings_forms import (
    AgendaSettingsForm,
    ExceptionForm,
    HolidayForm,
    ProfessionalForm,
    ServiceForm,
    opening_hours_formset,
    working_hours_formset,
)


def _page(request, template, context, *, saved: str = "", status: int | None = None):
    """The whole page, or (htmx) only its form card; a refused form answers 422."""
    if saved:
        context["notice"] = saved
    if status is None:
        status = 422 if request.method == "POST" and not saved else 200
    name = f"{template}#card" if request.htmx else template
    return render(request, name, context, status=status)


@require_http_methods(["GET", "POST"])
@access.settings_required
def rules(request):
    # A fresh row, not the memoized one: a refused form must not leave its values in the memo.
    agenda, _created = AgendaSettings.objects.get_or_create(organization=request.organization)
    form = AgendaSettingsForm(request.POST or None, instance=agenda)
    saved = ""
    if request.method == "POST" and form.is_valid():
        form.save()
        saved = _("Agenda settings saved.")
    return _page(request, "appointments/settings/rules.html", {"form": form}, saved=saved)


@require_http_methods(["GET"])
@access.settings_required
def service_list(request):
    services = Service.objects.filter(organization=request.organization).prefetch_related(
        "professionals"
    )
    return render(request, "appointments/settings/service_list.html", {"services": services})


@require_http_methods(["GET", "POST"])
@access.settings_required
def service_edit(request, code=None):
    service = (
        get_object_or_404(Service, organization=request.organization, code=code)
        if code
        else Service(organization=request.organization)
    )
    form = ServiceForm(request.POST or None, instance=service, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Service “%(name)s” saved.") % {"name": service.name})
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = _url("agenda_settings_services")
            return response
        return redirect("agenda_settings_services")
    return _page(
        request, "appointments/settings/service_form.html", {"form": form, "service": service}
    )


def _url(name, *args):
    return reverse(name, args=args)


@require_http_methods(["GET"])
@access.settings_required
def professional_list(request):
    professionals = Professional.objects.filter(organization=request.organization).select_related(
        "user", "room"
    )
    return render(
        request, "appointments/settings/professional_list.html", {"professionals": professionals}
    )


@require_http_methods(["GET", "POST"])
@access.settings_required
def professional_edit(request, code=None):
    organization = request.organization
    professional = (
        get_object_or_404(Professional, organization=organization, code=code)
        if code
        else Professional(organization=organization)
    )
    data = request.POST or None
    form = ProfessionalForm(data, instance=professional, organization=organization)
    hours = working_hours_formset(professional, organization, data)
    if request.method == "POST" and form.is_valid() and hours.is_valid():
        with transaction.atomic():
            form.save()
            hours.save_for(professional=professional)
        messages.success(request, _("Agenda of %(name)s saved.") % {"name": professional.name})
        target = _url("agenda_settings_professional", professional.code)
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return redirect(target)
    context = {
        "form": form,
        "hours": hours,
        "professional": professional,
        "exceptions": professional.exceptions.all() if professional.pk else [],
        "exception_form": ExceptionForm(organization=organization),
    }
    return _page(request, "appointments/settings/professional_form.html", context)


@require_POST
@access.settings_required
def exception_add(request, code):
    organization = request.organization
    professional = get_object_or_404(Professional, organization=organization, code=code)
    form = ExceptionForm(request.POST, organization=organization)
    saved = ""
    if form.is_valid():
        AgendaException.objects.create(
            organization=organization,
            professional=professional,
            kind=form.cleaned_data["kind"],
            starts_at=form.cleaned_data["starts_at"],
            ends_at=form.cleaned_data["ends_at"],
            reason=form.cleaned_data["reason"],
        )
        saved = _("Exception added.")
        form = ExceptionForm(organization=organization)
    if not request.htmx:
        _flash(request, form, saved)
        return redirect("agenda_settings_professional", professional.code)
    context = {
        "professional": professional,
        "exceptions": professional.exceptions.all(),
        "exception_form": form,
    }
    return _page(request, "appointments/settings/_exceptions.html", context, saved=saved)


@require_POST
@access.settings_required
def exception_delete(request, code, pk):
    professional = get_object_or_404(Professional, organization=request.organization, code=code)
    get_object_or_404(AgendaException, professional=professional, pk=pk).delete()
    if not request.htmx:
        messages.success(request, _("Exception removed."))
        return redirect("agenda_settings_professional", professional.code)
    context = {
        "professional": professional,
        "exceptions": professional.exceptions.all(),
        "exception_form": ExceptionForm(organization=request.organization),
    }
    return _page(
        request,
        "appointments/settings/_exceptions.html",
        context,
        saved=_("Exception removed."),
    )


@require_http_methods(["GET", "POST"])
@access.settings_required
def opening_hours(request):
    organization = request.organization
    hours = opening_hours_formset(organization, request.POST or None)
    saved = ""
    if request.method == "POST" and hours.is_valid():
        with transaction.atomic():
            hours.save_for()
        saved = _("Opening hours saved.")
        hours = opening_hours_formset(organization)
    context = {
        "hours": hours,
        "holidays": Holiday.objects.filter(organization=organization),
        "holiday_form": HolidayForm(organization=organization),
        "time_zone": organization.time_zone,
    }
    return _page(request, "appointments/settings/opening_hours.html", context, saved=saved)


def _flash(request, form, saved: str) -> None:
    """Without htmx the small forms go back to their page with the outcome as a message."""
    if saved:
        messages.success(request, saved)
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


def _holidays_card(request, form, saved=""):
    if not request.htmx:
        _flash(request, form, saved)
        return redirect("agenda_settings_hours")
    context = {
        "holidays": Holiday.objects.filter(organization=request.organization),
        "holiday_form": form,
    }
    return _page(request, "appointments/settings/_holidays.html", context, saved=saved)


@require_POST
@access.settings_required
def holiday_add(request):
    form = HolidayForm(request.POST, organization=request.organization)
    if form.is_valid():
        form.save()
        return _holidays_card(
            request, HolidayForm(organization=request.organization), _("Holiday added.")
        )
    return _holidays_card(request, form)


@require_POST
@access.settings_required
def holiday_delete(request, pk):
    get_object_or_404(Holiday, organization=request.organization, pk=pk).delete()
    return _holidays_card(
        request, HolidayForm(organization=request.organization), _("Holiday removed.")
    )
