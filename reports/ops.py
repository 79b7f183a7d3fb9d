"""Operational pages: an organization's alerts and thresholds (its admins), and the ops page
of the installation (superusers only; 404 for anyone else): worker heartbeats and queue depth
per cluster, the queue backlog threshold, open alerts."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.access import can_edit, section_required
from campaigns.models import ContactImport
from kernel import health
from reports import alerts
from reports.forms import AlertSettingsForm, OpsSettingsForm
from reports.models import Alert, OpsSettings


@require_http_methods(["GET", "POST"])
@section_required("settings")
def alert_list(request):
    config = alerts.alert_settings_for(request.organization)
    editable = can_edit(request.membership, "settings")
    form = AlertSettingsForm(request.POST or None, instance=config)
    if request.method == "POST":
        if not editable:
            raise PermissionDenied
        if form.is_valid():
            form.save()
            messages.success(request, _("Alert thresholds saved."))
            return redirect("alert_list")
    history = Alert.objects.filter(organization=request.organization)[:50]
    return render(
        request,
        "reports/alert_list.html",
        {
            "form": form,
            "editable": editable,
            "alerts": [(alert, alerts.alert_text(alert)) for alert in history],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def ops_page(request):
    if not request.user.is_superuser:
        raise Http404
    form = OpsSettingsForm(request.POST or None, instance=OpsSettings.get())
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Alert thresholds saved."))
        return redirect("ops_page")
    system = Alert.objects.filter(organization=None)[:50]
    context = {
        "form": form,
        "clusters": health.workers_status(),
        "alerts": [(alert, alerts.alert_text(alert)) for alert in system],
        "imports": ContactImport.objects.filter(
            status__in=[ContactImport.Status.QUEUED, ContactImport.Status.RUNNING]
        ).count(),
    }
    template = "reports/ops.html#clusters" if request.htmx else "reports/ops.html"
    return render(request, template, context)
