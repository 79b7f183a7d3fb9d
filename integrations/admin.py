from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyTenantAdmin, TenantAdmin
from integrations.models import (
    MessageTemplate,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    WhatsAppNumber,
)


class WhatsAppNumberForm(forms.ModelForm):
    """Credentials are write-only: blank keeps the stored value, and nothing is shown back."""

    access_token = forms.CharField(
        label=_("access token"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    app_secret = forms.CharField(
        label=_("app secret"), required=False, widget=forms.PasswordInput(render_value=False)
    )

    class Meta:
        model = WhatsAppNumber
        exclude: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("access_token", "app_secret"):
            self.initial[name] = ""
            stored = getattr(self.instance, f"masked_{name}", "")
            if stored:
                self.fields[name].help_text = _("Stored: %(masked)s. Leave blank to keep it.") % {
                    "masked": stored
                }

    def clean(self):
        cleaned = super().clean()
        for name in ("access_token", "app_secret"):
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(WhatsAppNumber.objects.get(pk=self.instance.pk), name)
        return cleaned


@admin.register(WhatsAppNumber)
class WhatsAppNumberAdmin(TenantAdmin):
    form = WhatsAppNumberForm
    list_display = [
        "name",
        "display_phone_number",
        "organization",
        "provider",
        "quality_rating",
        "messaging_limit",
        "is_active",
    ]
    list_filter = ["provider", "is_active", "quality_rating", "organization"]
    search_fields = ["name", "display_phone_number", "phone_number_id", "waba_id"]
    readonly_fields = ["code", "verify_token", "webhook_key", "created_at"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["id", "number", "received_at", "processed_at", "attempts", "short_error"]
    list_filter = ["processed_at", "number"]
    search_fields = ["error"]
    date_hierarchy = "received_at"
    exclude = ["body"]
    readonly_fields = [
        "body_text",
        "headers",
        "number",
        "organization",
        "received_at",
        "processed_at",
        "attempts",
        "error",
    ]

    @admin.display(description=_("error"))
    def short_error(self, event):
        return event.error[:80]

    @admin.display(description=_("body"))
    def body_text(self, event):
        return bytes(event.body).decode("utf-8", "replace")


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TenantAdmin):
    list_display = [
        "name",
        "language",
        "category",
        "status",
        "number",
        "organization",
        "updated_at",
    ]
    list_filter = ["status", "category", "language", "organization"]
    search_fields = ["name"]
    readonly_fields = ["code", "meta_id", "updated_at"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(TenantAdmin):
    list_display = ["url", "organization", "is_active", "failure_streak", "created_at"]
    list_filter = ["organization", "is_active"]
    search_fields = ["url", "description"]
    exclude = ["secret"]
    readonly_fields = ["code", "last_sequence", "created_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "event_type",
        "subscription",
        "status",
        "attempts",
        "response_status",
        "created_at",
    ]
    list_filter = ["organization", "status", "event_type"]


from integrations import admin_web  # noqa: E402,F401 - Evolution API servers (WhatsApp Web)
