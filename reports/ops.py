"""Operational pages: an organization's alerts and thresholds (its admins), and the ops page
of the installation (superusers only; 404 for anyone else): worker heartbeats and queue depth
per cluster, the queue backlog threshold, open alerts, and the follow-up work (outbox entries)
that failed too many times, with retry and discard (audited)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import can_edit, section_required
from accounts.models import Organization
from campaigns.models import ContactImport
from kernel import health, outbox
from reports import alerts, services
from reports.forms import AlertSettingsForm, OpsSettingsForm
from reports.models import Alert, AuditEvent, OpsSettings


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


DEAD_SHOWN = 100


def _superuser(request):
    if not request.user.is_superuser:
        raise Http404


def _dead_entries():
    """The oldest stopped entries (with their organization), and how many there are."""
    dead = outbox.dead()
    entries = list(dead[:DEAD_SHOWN])
    names = dict(
        Organization.objects.filter(
            pk__in={e.organization_id for e in entries if e.organization_id}
        ).values_list("pk", "name")
    )
    for entry in entries:
        entry.organization_name = names.get(entry.organization_id, "")
    return entries, dead.count() if len(entries) == DEAD_SHOWN else len(entries)


@login_required
@require_http_methods(["GET", "POST"])
def ops_page(request):
    _superuser(request)
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
    if not request.htmx:
        context["dead"], context["dead_total"] = _dead_entries()
    template = "reports/ops.html#clusters" if request.htmx else "reports/ops.html"
    return render(request, template, context)


@login_required
@require_POST
def ops_outbox(request):
    """Retry or discard stopped outbox entries (one, or every one listed: ``entry`` repeated);
    each one is written to the audit log with its key, payload, attempts and last error."""
    _superuser(request)
    action = request.POST.get("action")
    if action not in ("retry", "discard"):
        return HttpResponseBadRequest(_("Unknown action."))
    try:
        ids = [int(value) for value in request.POST.getlist("entry")]
    except ValueError:
        return HttpResponseBadRequest(_("Invalid entry."))
    with transaction.atomic():
        done = (outbox.retry if action == "retry" else outbox.discard)(ids)
        organizations = Organization.objects.in_bulk({e.organization_id for e in done} - {None})
        for entry in done:
            services.audit_record(
                action=AuditEvent.Action.OUTBOX_RETRIED
                if action == "retry"
                else AuditEvent.Action.OUTBOX_DISCARDED,
                organization=organizations.get(entry.organization_id),
                actor=request.user,
                request=request,
                target=entry,
                data={
                    "key": entry.key,
                    "payload": entry.payload,
                    "attempts": entry.attempts,
                    "error": entry.error[:500],
                },
            )
    if action == "retry":
        message = ngettext(
            "%(n)s stopped task queued again.", "%(n)s stopped tasks queued again.", len(done)
        )
    else:
        message = ngettext(
            "%(n)s stopped task discarded.", "%(n)s stopped tasks discarded.", len(done)
        )
    messages.success(request, message % {"n": len(done)})
    return redirect(reverse("ops_page") + "#ops-outbox")
