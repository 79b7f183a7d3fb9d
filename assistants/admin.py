from django.contrib import admin, messages
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import ReadOnlyTenantAdmin, TenantAdmin
from assistants.models import (
    AISettings,
    Assistant,
    AssistantVersion,
    ConversationAnalysis,
    KnowledgeChunk,
    KnowledgeSource,
    ReplyJob,
    UsageRecord,
)
from kernel import tasks


@admin.register(AISettings)
class AISettingsAdmin(TenantAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["organization", "base_url", "embedding_model", "timeout_seconds"]
    exclude = ["api_key"]


@admin.register(Assistant)
class AssistantAdmin(TenantAdmin):
    list_display = ["name", "organization", "model", "version", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(AssistantVersion)
class AssistantVersionAdmin(ReadOnlyTenantAdmin):
    list_display = ["assistant", "number", "created_by", "created_at"]


@admin.register(KnowledgeSource)
class KnowledgeSourceAdmin(TenantAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["title", "assistant", "kind", "chunk_count", "embedded"]
    list_filter = ["kind"]


@admin.register(KnowledgeChunk)
class KnowledgeChunkAdmin(ReadOnlyTenantAdmin):
    list_display = ["source", "position", "__str__"]
    exclude = ["embedding"]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "assistant", "kind", "model", "tokens_in", "tokens_out", "cost"]
    list_filter = ["kind", "month"]


@admin.register(ReplyJob)
class ReplyJobAdmin(ReadOnlyTenantAdmin):
    list_display = ["chat", "last_inbound_id", "answered_inbound_id", "claimed_until"]


@admin.register(ConversationAnalysis)
class ConversationAnalysisAdmin(ReadOnlyTenantAdmin):
    list_display = ["chat", "lead_score", "sentiment", "intent", "created_at"]
    list_filter = ["sentiment"]
    actions = ["rerun"]

    def has_change_permission(self, request, obj=None):
        # Read-only form, but the re-run action needs "change" on the listed rows.
        return obj is None and TenantAdmin.has_change_permission(self, request, obj)

    @admin.action(
        description=_("Re-run the analysis of these conversations"), permissions=["change"]
    )
    def rerun(self, request, queryset):
        chat_ids = set(queryset.values_list("chat_id", flat=True))
        for chat_id in chat_ids:
            tasks.enqueue("assistants.tasks.analyze_chat", chat_id, queue="bulk")
        self.message_user(
            request,
            ngettext(
                "The analysis of %(n)d conversation was queued.",
                "The analysis of %(n)d conversations was queued.",
                len(chat_ids),
            )
            % {"n": len(chat_ids)},
            messages.SUCCESS,
        )
