import zoneinfo
from datetime import datetime, time, timedelta

from django.apps import apps
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import can_edit, section_required
from accounts.models import User
from accounts.money import money
from reports import charts, csat, exports, privacy, selectors, services, stats, weekly
from reports.access import get_contact_for_admin
from reports.forms import (
    AuditFilterForm,
    ConfirmForm,
    PeriodForm,
    ReportSettingsForm,
    RetentionForm,
)
from reports.models import WeeklyReportDelivery


def _period(request):
    form = PeriodForm(request.GET or None)
    return form, form.get_period(stats.local_today(request.organization))


@require_GET
@section_required("dashboard")
def dashboard(request):
    form, period = _period(request)
    data = selectors.report(request.organization, period)
    has_assistants, has_campaigns = apps.is_installed("assistants"), apps.is_installed("campaigns")
    show_csat = csat.csat_enabled(request.organization) or bool(
        data["current"].csat_responses or data["previous"].csat_responses
    )
    context = {
        "form": form,
        "period": period,
        "previous": period.previous,
        "show_csat": show_csat,
        "cards": charts.cards(
            data["current"],
            data["previous"],
            has_assistants=has_assistants,
            has_campaigns=has_campaigns,
            show_csat=show_csat,
        ),
        "daily": charts.daily_chart(data["days"]),
        "histogram": charts.histogram_chart(data["histogram"]),
        "heat": charts.heat_chart(data["heat"]),
        "agents": [
            {
                "name": name,
                "conversations": f.conversations,
                "frt_median": charts.duration(f.frt_median),
                "frt_p90": charts.duration(f.frt_p90),
                "resolved": f.resolved,
                "resolution": charts.duration(f.resolution_median),
                "csat": charts.csat_cell(f),
            }
            for name, f in data["agents"]
        ],
        "assistants": [
            {
                "name": name,
                "conversations": f.conversations,
                "resolved_by_ai": f.resolved_by_ai,
                "handoffs": f.handoffs,
                "frt_median": charts.duration(f.frt_median),
                "csat": charts.csat_cell(f),
                "cost": money(f.ai_cost, request.organization),
            }
            for name, f in data["assistants"]
        ],
        "has_assistants": has_assistants,
        "funnel": charts.funnel_chart(data["funnel"]),
        "query": request.GET.urlencode(),
    }
    template = "reports/dashboard.html#report" if request.htmx else "reports/dashboard.html"
    return render(request, template, context)


@require_GET
@section_required("dashboard")
def report_export(request):
    kind, fmt = request.GET.get("report", "daily"), request.GET.get("format", "csv")
    if kind not in exports.REPORTS or fmt not in exports.FORMATS:
        raise Http404
    _form, period = _period(request)
    headers, rows = exports.table(kind, selectors.report(request.organization, period))
    response = HttpResponse(exports.write(fmt, headers, rows), content_type=exports.FORMATS[fmt])
    name = f"{request.organization.slug}-{kind}-{period.first}-{period.last}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@section_required("settings")
def audit_log(request):
    organization = request.organization
    members = User.objects.filter(memberships__organization=organization).order_by("email")
    form = AuditFilterForm(request.GET or None, members=members)
    filters = form.cleaned_data if form.is_valid() else {}
    tz = zoneinfo.ZoneInfo(organization.time_zone)

    def local(day, shift=0):
        return datetime.combine(day + timedelta(days=shift), time.min, tz) if day else None

    events = selectors.audit_events(
        organization,
        action=filters.get("action", ""),
        actor=filters.get("actor"),
        since=local(filters.get("since")),
        until=local(filters.get("until"), 1),
        query=filters.get("q", ""),
    )
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "reports/auditevent_list.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@require_http_methods(["GET", "POST"])
@section_required("settings")
def privacy_settings(request):
    policy = services.retention_policy_for(request.organization)
    editable = can_edit(request.membership, "settings")
    form = RetentionForm(request.POST or None, instance=policy)
    if request.method == "POST":
        if not editable:
            return HttpResponse(status=403)
        if form.is_valid():
            services.retention_policy_update(
                organization=request.organization,
                message_days=form.cleaned_data["message_days"],
                actor=request.user,
            )
            messages.success(request, _("Retention policy saved."))
            return redirect("privacy_settings")
    return render(request, "reports/privacy_settings.html", {"form": form, "editable": editable})


@require_GET
@section_required("settings", edit=True)
def contact_privacy(request, code):
    contact = get_contact_for_admin(request, code)
    return render(
        request,
        "reports/contact_privacy.html",
        {
            "contact": contact,
            "chats": contact.chats.count(),
            "erased": getattr(contact, "erasure", None),
        },
    )


@require_http_methods(["GET", "POST"])
@section_required("settings", edit=True)
def contact_export(request, code):
    contact = get_contact_for_admin(request, code)
    if request.method == "GET":
        return render(request, "reports/contact_export.html", {"contact": contact})
    archive = privacy.contact_export(contact=contact, actor=request.user, request=request)
    response = HttpResponse(archive, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.code}.zip"'
    return response


@require_http_methods(["GET", "POST"])
@section_required("settings", edit=True)
def contact_erase(request, code):
    contact = get_contact_for_admin(request, code)
    form = ConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        privacy.contact_erase(contact=contact, actor=request.user, request=request)
        messages.success(request, _("The contact's personal data was erased."))
        return redirect("contact_privacy", code=contact.code)
    return render(request, "reports/contact_erase.html", {"contact": contact, "form": form})


@require_http_methods(["GET", "POST"])
@section_required("dashboard")
def report_settings(request):
    """CSAT survey and weekly email options: admins and managers edit, others read."""
    organization = request.organization
    config = csat.report_settings_for(organization)
    editable = can_edit(request.membership, "dashboard")
    members = User.objects.filter(memberships__organization=organization).order_by("name", "email")
    form = ReportSettingsForm(
        request.POST or None,
        instance=config,
        members=members,
        question_placeholder=csat.default_question(organization.language),
    )
    if request.method == "POST":
        if not editable:
            return HttpResponse(_("Only admins and managers change report settings."), status=403)
        if form.is_valid():
            services.report_settings_update(
                config=config, data=dict(form.cleaned_data), actor=request.user
            )
            messages.success(request, _("Report settings saved."))
            return redirect("report_settings")
    context = {
        "form": form,
        "config": config,
        "editable": editable,
        "question": csat.question_for(config),
        "recipients": list(weekly.recipients(config)),
        "deliveries": WeeklyReportDelivery.objects.filter(organization=organization)[:5],
    }
    return render(request, "reports/report_settings.html", context)


@require_POST
@section_required("dashboard")
def report_send_now(request):
    try:
        period = weekly.weekly_report_send_to(organization=request.organization, user=request.user)
    except OSError as error:  # SMTP refused or unreachable: say so, keep the page
        messages.error(request, _("The email could not be sent: %(e)s") % {"e": error})
    else:
        messages.success(
            request,
            _("The report of %(first)s – %(last)s was sent to %(email)s.")
            % {"first": period.first, "last": period.last, "email": request.user.email},
        )
    return redirect("report_settings")
