from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import ReadOnlyTenantAdmin, TenantAdmin
from campaigns import services
from campaigns.models import (
    AudienceSettings,
    Automation,
    AutomationRun,
    Campaign,
    CampaignRecipient,
    ConsentEvent,
    DripDelivery,
    DripEnrolment,
    DripProgram,
    DripQuestion,
    DripStep,
    Segment,
)


@admin.register(Campaign)
class CampaignAdmin(TenantAdmin):
    list_display = ("name", "organization", "status", "schedule", "total", "sent", "failed")
    list_filter = ("status",)
    search_fields = ("name",)
    readonly_fields = ("code", "run", "expanded_run", "dispatcher_token", "dispatcher_lease_until")
    actions = ["pause", "resume"]

    @admin.action(description=_("Pause the selected campaigns"), permissions=["change"])
    def pause(self, request, queryset):
        self._apply(request, queryset, services.campaign_pause)

    @admin.action(description=_("Resume the selected campaigns"), permissions=["change"])
    def resume(self, request, queryset):
        self._apply(request, queryset, services.campaign_resume)

    def _apply(self, request, queryset, change):
        """The campaign page's own services: a campaign in a state that does not allow the
        change (e.g. finished) is left as it is and counted."""
        changed = sum(1 for campaign in queryset if change(campaign=campaign))
        skipped = queryset.count() - changed
        self.message_user(
            request,
            ngettext("%(n)d campaign changed.", "%(n)d campaigns changed.", changed)
            % {"n": changed}
            + (" " + _("%(n)d left as they were.") % {"n": skipped} if skipped else ""),
            messages.WARNING if skipped else messages.SUCCESS,
        )


@admin.register(Segment)
class SegmentAdmin(TenantAdmin):
    list_display = ("name", "organization", "kind")
    search_fields = ("name",)
    raw_id_fields = ("contacts",)


@admin.register(AudienceSettings)
class AudienceSettingsAdmin(TenantAdmin):
    list_display = ("organization", "opt_out_keywords")


@admin.register(CampaignRecipient)
class CampaignRecipientAdmin(ReadOnlyTenantAdmin):
    list_display = ("campaign", "to", "status", "reason", "wamid", "sent_at")
    list_filter = ("status",)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyTenantAdmin):
    list_display = ("contact", "opted_in", "source", "created_at")


@admin.register(Automation)
class AutomationAdmin(TenantAdmin):
    list_display = ("name", "organization", "trigger", "is_active")
    list_filter = ("trigger", "is_active")
    search_fields = ("name", "keywords")
    readonly_fields = ("code",)


@admin.register(AutomationRun)
class AutomationRunAdmin(ReadOnlyTenantAdmin):
    list_display = ("automation", "contact", "outcome", "created_at")
    list_filter = ("outcome",)


@admin.register(DripProgram)
class DripProgramAdmin(TenantAdmin):
    list_display = ("name", "organization", "kind", "is_active", "form_enabled")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    readonly_fields = ("code", "form_slug")


@admin.register(DripStep)
class DripStepAdmin(TenantAdmin):
    list_display = ("program", "position", "delay_days", "delay_hours", "send_time")


@admin.register(DripQuestion)
class DripQuestionAdmin(TenantAdmin):
    list_display = ("text", "program", "topic", "language")
    list_filter = ("language",)
    search_fields = ("text", "topic")


@admin.register(DripEnrolment)
class DripEnrolmentAdmin(TenantAdmin):
    list_display = ("contact", "program", "status", "steps_sent", "next_due_at")
    list_filter = ("status",)
    raw_id_fields = ("contact",)


@admin.register(DripDelivery)
class DripDeliveryAdmin(ReadOnlyTenantAdmin):
    list_display = ("enrolment", "question", "score", "sent_at", "answered_at")
