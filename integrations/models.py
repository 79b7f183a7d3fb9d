import secrets
import uuid

from django.db import models
from django.db.models import Lookup
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel
from integrations.crypto import EncryptedTextField, mask


class WhatsAppNumber(TenantModel):
    """A WhatsApp Business phone number connected through the Cloud API (or the sandbox)."""

    class Provider(models.TextChoices):
        CLOUD_API = "cloud_api", _("WhatsApp Cloud API")
        SANDBOX = "sandbox", _("Sandbox (local emulator)")
        EVOLUTION = "evolution", _("WhatsApp Web (Evolution API)")

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
    # WhatsApp Web numbers (provider "evolution"): one Evolution API instance each. The server
    # is the organization's own or, when None, the installation's (EVOLUTION_API_URL).
    evolution_server = models.ForeignKey(
        "integrations.EvolutionServer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="numbers",
        verbose_name=_("Evolution API server"),
    )
    evolution_instance = models.CharField(_("instance name"), max_length=80, blank=True)
    # Evolution has no webhook signature: every delivery must carry this secret (path or header).
    webhook_secret = models.CharField(max_length=64, default=secrets.token_urlsafe, editable=False)
    connection_state = models.CharField(_("connection state"), max_length=20, blank=True)
    connection_qr = models.TextField(blank=True)  # the last QR code, as a data: URI
    connection_updated_at = models.DateTimeField(null=True, blank=True)
    daily_cap = models.PositiveIntegerField(
        _("daily cap"),
        null=True,
        blank=True,
        help_text=_(
            "Most business-initiated messages a day. Blank: WhatsApp Web numbers 200, "
            "Cloud API numbers their Meta messaging tier (none when unknown or unlimited)."
        ),
    )

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

    @property
    def send_daily_cap(self) -> int | None:
        """Today's cap of business-initiated sends (WhatsApp Web numbers), or None."""
        from integrations.web import daily_cap_for

        return daily_cap_for(self)

    @property
    def is_web_session(self) -> bool:
        """A number whose provider paces sends for ban risk (WhatsApp Web)."""
        from integrations.providers import capabilities_for

        return capabilities_for(self).daily_cap is not None


class EvolutionServer(TenantModel):
    """An Evolution API server (github.com/EvolutionAPI/evolution-api) an organization runs
    for its WhatsApp Web numbers: its URL and global API key (encrypted at rest)."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=80)
    base_url = models.URLField(_("server URL"), max_length=300)
    api_key = EncryptedTextField(_("global API key"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("Evolution API server")
        verbose_name_plural = _("Evolution API servers")

    def __str__(self):
        return f"{self.name} ({self.base_url})"

    @property
    def masked_api_key(self) -> str:
        return mask(self.api_key)


class DailySends(models.Model):
    """Business-initiated sends of one number on one day (UTC), counted against a provider's
    ``daily_cap`` by one conditional UPDATE (``integrations.web.daily_quota_take``)."""

    number = models.ForeignKey(WhatsAppNumber, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["number", "day"], name="unique_daily_sends")]

    def __str__(self):
        return f"{self.number_id} {self.day}: {self.count}"


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
            ),
            # The drain's claim (``services.claim_sql``): the oldest deliveries never
            # attempted, by id. The predicate is the claim's own WHERE, so PostgreSQL walks this
            # index in order and stops at the batch size, whatever its statistics say: with a
            # looser index it once chose to sort every unprocessed row, 290 ms a claim.
            models.Index(
                fields=["id"],
                condition=models.Q(processed_at__isnull=True, attempts=0),
                name="webhookevent_unclaimed",
            ),
        ]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self):
        return f"Webhook {self.pk} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class BytesContains(Lookup):
    """``body__bytes_contains=b"..."``: the raw bytes hold the needle (Django has no portable
    lookup for binary columns). Finds one customer's deliveries in the webhook log (erasure)."""

    lookup_name = "bytes_contains"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"instr({lhs}, {rhs}) > 0", [*lhs_params, *rhs_params]

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"position({rhs} in {lhs}) > 0", [*rhs_params, *lhs_params]


WebhookEvent._meta.get_field("body").register_lookup(BytesContains)


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


# --- Outgoing webhooks ------------------------------------------------------------------------


def _webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookSubscription(TenantModel):
    """An integrator's URL that receives signed event notifications (see ``outgoing.py``)."""

    class Event(models.TextChoices):
        MESSAGE_RECEIVED = "message.received", "message.received"
        MESSAGE_SENT = "message.sent", "message.sent"
        MESSAGE_STATUS = "message.status", "message.status"
        CHAT_CREATED = "chat.created", "chat.created"
        CHAT_ASSIGNED = "chat.assigned", "chat.assigned"
        CHAT_RESOLVED = "chat.resolved", "chat.resolved"
        CONTACT_CREATED = "contact.created", "contact.created"
        CONTACT_OPTED_OUT = "contact.opted_out", "contact.opted_out"
        CAMPAIGN_COMPLETED = "campaign.completed", "campaign.completed"
        ASSISTANT_HANDOFF = "assistant.handoff", "assistant.handoff"
        ANALYSIS_COMPLETED = "analysis.completed", "analysis.completed"
        APPOINTMENT_CREATED = "appointment.created", "appointment.created"
        APPOINTMENT_RESCHEDULED = "appointment.rescheduled", "appointment.rescheduled"
        APPOINTMENT_CANCELLED = "appointment.cancelled", "appointment.cancelled"
        APPOINTMENT_CONFIRMED = "appointment.confirmed", "appointment.confirmed"
        APPOINTMENT_NO_SHOW = "appointment.no_show", "appointment.no_show"
        FLOW_COMPLETED = "flow.completed", "flow.completed"
        FLOW_HANDOFF = "flow.handoff", "flow.handoff"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(_("events"), default=list)
    secret = EncryptedTextField(_("signing secret"), default=_webhook_secret)
    is_active = models.BooleanField(_("active"), default=True)
    last_sequence = models.PositiveBigIntegerField(default=0)
    failure_streak = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")

    def __str__(self):
        return self.url


class WebhookDelivery(TenantModel):
    """One event sent (or being sent) to one subscription, with the last attempt's record."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        RETRYING = "retrying", _("Retrying")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Failed")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=40)
    sequence = models.PositiveBigIntegerField(default=0)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    request_headers = models.JSONField(default=dict, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhookdelivery_due"),
            models.Index(fields=["subscription", "-created_at"], name="webhookdelivery_recent"),
        ]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")

    def __str__(self):
        return f"{self.event_type} → {self.subscription_id} ({self.status})"
