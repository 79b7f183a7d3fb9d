import secrets
import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel
from integrations.crypto import EncryptedTextField, mask


class WhatsAppNumber(TenantModel):
    """A WhatsApp Business phone number connected through the Cloud API (or the sandbox)."""

    class Provider(models.TextChoices):
        CLOUD_API = "cloud_api", _("WhatsApp Cloud API")
        SANDBOX = "sandbox", _("Sandbox (local emulator)")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=80)
    display_phone_number = models.CharField(_("display number"), max_length=32)
    phone_number_id = models.CharField(_("phone number ID"), max_length=64, unique=True)
    waba_id = models.CharField(_("WhatsApp Business Account ID"), max_length=64, blank=True)
    provider = models.CharField(
        _("provider"), max_length=20, choices=Provider.choices, default=Provider.SANDBOX
    )
    access_token = EncryptedTextField(_("access token"), blank=True)
    app_secret = EncryptedTextField(_("app secret"), blank=True)
    verify_token = models.CharField(
        _("verify token"), max_length=64, default=secrets.token_urlsafe, editable=False
    )
    webhook_key = models.CharField(
        max_length=48, unique=True, default=secrets.token_urlsafe, editable=False
    )
    quality_rating = models.CharField(_("quality rating"), max_length=20, blank=True)
    messaging_limit = models.CharField(_("messaging limit tier"), max_length=40, blank=True)
    throughput_per_second = models.PositiveIntegerField(_("messages per second"), default=80)
    send_read_receipts = models.BooleanField(_("send read receipts"), default=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("WhatsApp number")
        verbose_name_plural = _("WhatsApp numbers")

    def __str__(self):
        return f"{self.name} ({self.display_phone_number})"

    @property
    def masked_access_token(self) -> str:
        return mask(self.access_token)

    @property
    def masked_app_secret(self) -> str:
        return mask(self.app_secret)


class WebhookEvent(models.Model):
    """The durable log of every webhook delivery: stored first, processed after.

    Not tenant-owned at receipt (the organization is known only through the number in the URL,
    kept here as ``number``); reprocessing a row is always harmless.
    """

    number = models.ForeignKey(
        WhatsAppNumber, null=True, on_delete=models.SET_NULL, related_name="webhook_events"
    )
    organization = models.ForeignKey(
        "accounts.Organization", null=True, on_delete=models.CASCADE, related_name="+"
    )
    body = models.BinaryField()
    headers = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="webhookevent_unprocessed",
            )
        ]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self):
        return f"Webhook {self.pk} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class MessageTemplate(TenantModel):
    """An approved (or pending) WhatsApp message template, synced from the WABA."""

    number = models.ForeignKey(WhatsAppNumber, on_delete=models.CASCADE, related_name="templates")
    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    meta_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(_("name"), max_length=512)
    language = models.CharField(_("language"), max_length=16)
    category = models.CharField(_("category"), max_length=32, blank=True)
    status = models.CharField(_("status"), max_length=32, blank=True)
    components = models.JSONField(default=list)
    rejected_reason = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["number", "name", "language"], name="unique_template_per_number"
            )
        ]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")

    def __str__(self):
        return f"{self.name} ({self.language})"
