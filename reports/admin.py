"""Back office: the audit log (read-only), LGPD actions on contacts, retention policies,
daily statistics (usage and AI cost per organization) and retrying failed webhook events.

Contacts and webhook events are registered by ``inbox`` and ``integrations``; reports sits above
them, so it swaps in subclasses of their admins that only add actions."""

import io
import zipfile

from django.contrib import admin, messages
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import ReadOnlyTenantAdmin, TenantAdmin
from inbox.admin import ContactAdmin
from inbox.models import Contact
from integrations import services as integration_services
from integrations.admin import WebhookEventAdmin
from integrations.models import WebhookEvent
from reports import privacy
from reports.models import (
    AssistantDailyStat,
    AuditEvent,
    CsatResponse,
    CsatSurvey,
    DailyStat,
    ErasedContact,
    ReportSettings,
    RetentionPolicy,
    WeeklyReportDelivery,
)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "organization", "actor_label", "action", "target_label", "ip"]
    list_filter = ["action", "organization"]
    search_fields = ["actor_label", "target_label", "target_id", "ip"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def has_delete_permission(self, request, obj=None):
        return False  # append-only, even for platform superusers

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(TenantAdmin):
    list_display = ["organization", "message_days", "updated_at"]
    readonly_fields = ["updated_at"]


@admin.register(ErasedContact)
class ErasedContactAdmin(ReadOnlyTenantAdmin):
    list_display = ["token", "organization", "erased_by", "erased_at"]
    list_filter = ["organization"]
    search_fields = ["token"]


@admin.register(DailyStat)
class DailyStatAdmin(ReadOnlyTenantAdmin):
    """Usage and costs per organization and day (messages, conversations, AI cost)."""

    list_display = [
        "day", "organization", "agent", "conversations", "messages_in", "messages_out",
        "resolved", "ai_cost", "campaign_sent",
    ]  # fmt: skip
    list_filter = ["organization"]
    date_hierarchy = "day"
    exclude = ["first_response_seconds", "resolution_seconds", "hourly"]


@admin.register(AssistantDailyStat)
class AssistantDailyStatAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "day", "organization", "assistant", "conversations", "resolved_by_ai", "handoffs",
        "csat_responses", "ai_cost",
    ]  # fmt: skip
    list_filter = ["organization"]
    date_hierarchy = "day"
    exclude = ["first_response_seconds"]


@admin.register(ReportSettings)
class ReportSettingsAdmin(TenantAdmin):
    """CSAT survey and weekly email options (also on the Reports › Report settings page)."""

    list_display = [
        "organization",
        "csat_enabled",
        "weekly_enabled",
        "weekly_weekday",
        "weekly_hour",
    ]
    list_filter = ["csat_enabled", "weekly_enabled"]
    filter_horizontal = ["weekly_recipients"]
    readonly_fields = ["updated_at"]


@admin.register(CsatSurvey)
class CsatSurveyAdmin(ReadOnlyTenantAdmin):
    list_display = ["sent_at", "organization", "contact", "agent", "assistant"]
    list_filter = ["organization"]
    date_hierarchy = "sent_at"
    raw_id_fields = ["chat", "contact", "resolution", "message"]


@admin.register(CsatResponse)
class CsatResponseAdmin(ReadOnlyTenantAdmin):
    list_display = ["responded_at", "organization", "contact", "score", "agent", "assistant"]
    list_filter = ["score", "organization"]
    date_hierarchy = "responded_at"
    raw_id_fields = ["survey", "chat", "contact", "message"]


@admin.register(WeeklyReportDelivery)
class WeeklyReportDeliveryAdmin(ReadOnlyTenantAdmin):
    list_display = ["scheduled_for", "organization", "status", "sent_at"]
    list_filter = ["status", "organization"]
    date_hierarchy = "scheduled_for"


admin.site.unregister(Contact)


@admin.register(Contact)
class PrivacyContactAdmin(ContactAdmin):
    actions = ["export_data", "erase_data"]

    @admin.action(description=_("Export personal data (LGPD, ZIP)"))
    def export_data(self, request, queryset):
        contacts = list(queryset.select_related("organization"))
        if len(contacts) == 1:
            archive = privacy.contact_export(
                contact=contacts[0], actor=request.user, request=request
            )
            name = f"contact-{contacts[0].code}.zip"
        else:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as bundle:
                for contact in contacts:
                    bundle.writestr(
                        f"contact-{contact.code}.zip",
                        privacy.contact_export(
                            contact=contact, actor=request.user, request=request
                        ),
                    )
            archive, name = buffer.getvalue(), "contacts.zip"
        response = HttpResponse(archive, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.action(description=_("Erase personal data (LGPD)"), permissions=["change"])
    def erase_data(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "reports/admin_erase_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Erase personal data"),
                    "contacts": queryset,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                    "opts": self.model._meta,
                },
            )
        count = 0
        for contact in queryset.select_related("organization"):
            privacy.contact_erase(contact=contact, actor=request.user, request=request)
            count += 1
        self.message_user(
            request,
            ngettext("Erased %(n)d contact.", "Erased %(n)d contacts.", count) % {"n": count},
            messages.SUCCESS,
        )
        return None


admin.site.unregister(WebhookEvent)


@admin.register(WebhookEvent)
class RetryWebhookEventAdmin(WebhookEventAdmin):
    actions = ["retry"]

    def has_change_permission(self, request, obj=None):
        # Read-only form, but the retry action needs "change" on the listed rows.
        return obj is None and TenantAdmin.has_change_permission(self, request, obj)

    @admin.action(description=_("Retry processing"), permissions=["change"])
    def retry(self, request, queryset):
        failed = list(queryset.exclude(error="").values_list("pk", flat=True))
        WebhookEvent.objects.filter(pk__in=failed).update(processed_at=None)
        for event_id in failed:
            integration_services.webhook_event_process(event_id)
        still = WebhookEvent.objects.filter(pk__in=failed).exclude(error="").count()
        self.message_user(
            request,
            _("Retried %(n)d events; %(failed)d still failing.")
            % {"n": len(failed), "failed": still},
            messages.WARNING if still else messages.SUCCESS,
        )
