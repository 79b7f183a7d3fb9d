from django.contrib import admin

from accounts.admin import ReadOnlyTenantAdmin, TenantAdmin
from inbox import contacts
from inbox.models import Chat, Contact, Media, Message


@admin.register(Contact)
class ContactAdmin(TenantAdmin):
    list_display = ["display_name", "phone", "organization", "opt_in", "stage", "created_at"]
    list_filter = ["opt_in", "stage", "organization"]
    search_fields = ["name", "profile_name", "phone", "wa_id", "email"]
    # Consent has its ledger (campaigns), scores and conversions their services: shown only.
    readonly_fields = [
        "code", "wa_id", "opt_in", "opt_in_at", "opt_in_source", "converted_at",
        "conversion_source", "lead_score", "lead_score_at", "last_inbound_at", "erased_at",
        "created_at", "updated_at",
    ]  # fmt: skip

    def save_model(self, request, obj, form, change):
        """Through ``inbox.contacts``, like every contact write (its events, its checks)."""
        writable = (*contacts.FIELDS, "tags", "attributes")
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in writable}
        if change:
            contacts.contact_update(contact=obj, data=data, source="admin")
        else:
            created = contacts.contact_create(
                organization_id=obj.organization_id, phone=obj.phone, data=data, source="admin"
            )
            obj.pk, obj._state.adding = created.pk, False
            obj.refresh_from_db()


@admin.register(Chat)
class ChatAdmin(TenantAdmin):
    list_display = [
        "contact",
        "number",
        "status",
        "assignee",
        "last_message_at",
        "unread_count",
        "ai_enabled",
    ]
    list_filter = ["status", "ai_enabled", "number", "organization"]
    search_fields = ["contact__name", "contact__profile_name", "contact__phone"]
    readonly_fields = [
        "code",
        "last_message_at",
        "last_message_preview",
        "window_expires_at",
        "seq",
        "created_at",
    ]
    list_select_related = ["contact", "number", "assignee"]


@admin.register(Message)
class MessageAdmin(ReadOnlyTenantAdmin):
    list_display = ["timestamp", "chat", "direction", "type", "status", "author_type", "short_text"]
    list_filter = ["direction", "type", "status", "author_type", "organization"]
    search_fields = ["text", "wamid"]
    date_hierarchy = "timestamp"
    list_select_related = ["chat__contact", "chat__number"]

    @admin.display(description="text")
    def short_text(self, message):
        return message.text[:80]


@admin.register(Media)
class MediaAdmin(ReadOnlyTenantAdmin):
    list_display = ["filename", "mime_type", "size", "organization", "created_at"]
    list_filter = ["mime_type", "organization"]
    search_fields = ["filename", "meta_media_id", "sha256"]
