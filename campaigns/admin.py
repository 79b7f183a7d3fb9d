from django.contrib import admin

from accounts.admin import ReadOnlyTenantAdmin, TenantAdmin
from campaigns.models import AudienceSettings, Campaign, CampaignRecipient, ConsentEvent, Segment


@admin.register(Campaign)
class CampaignAdmin(TenantAdmin):
    list_display = ("name", "organization", "status", "schedule", "total", "sent", "failed")
    search_fields = ("name",)
    readonly_fields = ("code", "run", "expanded_run", "dispatcher_token", "dispatcher_lease_until")


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
