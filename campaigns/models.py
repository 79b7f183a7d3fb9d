"""Audiences (segments, static lists, consent history) and template campaigns with per-recipient
rows. The recipient table is the dispatch queue: claims, leases and wamids live on its rows, so a
worker killed mid-send, a restart or two workers at once can neither lose nor double a send."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel

DEFAULT_OPT_OUT_KEYWORDS = "STOP, PARAR, SAIR, CANCELAR, UNSUBSCRIBE"
DEFAULT_OPT_IN_KEYWORDS = "START, VOLTAR"


class AudienceSettings(TenantModel):
    """Per-organization opt-out vocabulary and confirmations (LGPD)."""

    opt_out_keywords = models.CharField(
        _("opt-out keywords"),
        max_length=500,
        default=DEFAULT_OPT_OUT_KEYWORDS,
        help_text=_("Comma separated. A message that is exactly one of them opts the contact out."),
    )
    opt_in_keywords = models.CharField(
        _("re-subscribe keywords"), max_length=500, default=DEFAULT_OPT_IN_KEYWORDS
    )
    opt_out_reply = models.CharField(_("opt-out confirmation"), max_length=1000, blank=True)
    opt_in_reply = models.CharField(_("re-subscribe confirmation"), max_length=1000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="unique_audience_settings")
        ]
        verbose_name = _("audience settings")
        verbose_name_plural = _("audience settings")

    def __str__(self):
        return str(self.organization)


class ConsentEvent(TenantModel):
    """One opt-in or opt-out of a contact, with where it came from (LGPD record)."""

    class Source(models.TextChoices):
        IMPORT = "import", _("Import")
        FORM = "form", _("Form")
        API = "api", _("API")
        CONVERSATION = "conversation", _("Conversation")
        STAFF = "staff", _("Team member")

    contact = models.ForeignKey(
        "inbox.Contact", on_delete=models.CASCADE, related_name="consent_events"
    )
    opted_in = models.BooleanField(_("opted in"))
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["contact", "-created_at"], name="consent_contact_recent")]
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")

    def __str__(self):
        return f"{self.contact_id} {'in' if self.opted_in else 'out'} ({self.source})"


class Segment(TenantModel):
    """A saved filter over contacts (dynamic) or a hand-picked list (static)."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Saved filter")
        STATIC = "static", _("Static list")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    # {"tags": [...], "exclude_tags": [...], "attributes": {k: v}, "opt_in": "opted_in",
    #  "stages": [...], "inbound_after": iso date, "inbound_before": iso date,
    #  "engagement": {"campaign": code, "state": "read_not_replied"}}
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    contacts = models.ManyToManyField("inbox.Contact", blank=True, related_name="segments")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self):
        return self.name


class Campaign(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    class Schedule(models.TextChoices):
        NOW = "now", _("Send now")
        AT = "at", _("At a date and time")
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")

    class TimeZoneMode(models.TextChoices):
        ORGANIZATION = "organization", _("Organization's time zone")
        CONTACT = "contact", _("Each contact's time zone")

    class Pace(models.TextChoices):
        RATE = "rate", _("Messages per second")
        STAGGER = "stagger", _("Random interval between sends")

    class QuietAction(models.TextChoices):
        DEFER = "defer", _("Wait until quiet hours end")
        SKIP = "skip", _("Skip the recipient")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    number = models.ForeignKey(
        "integrations.WhatsAppNumber",
        on_delete=models.RESTRICT,
        related_name="campaigns",
        verbose_name=_("number"),
    )
    template = models.ForeignKey(
        "integrations.MessageTemplate",
        on_delete=models.RESTRICT,
        related_name="campaigns",
        verbose_name=_("template"),
    )
    # {"header": [mapping], "body": [mapping, ...]}; mapping = {"source": "field"|"fixed",
    # "value": "name" | "attribute:city" | literal, "fallback": str}
    variables = models.JSONField(_("variables"), default=dict, blank=True)
    header_media_link = models.URLField(_("header media link"), blank=True)
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="campaigns",
        verbose_name=_("audience"),
        help_text=_("Empty: every opted-in contact."),
    )
    require_opt_in = models.BooleanField(
        _("only contacts who opted in"),
        default=True,
        help_text=_("Off: contacts with unknown consent are included too (never opted-out ones)."),
    )
    schedule = models.CharField(
        _("schedule"), max_length=10, choices=Schedule.choices, default=Schedule.NOW
    )
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    send_time = models.TimeField(_("time of day"), null=True, blank=True)
    weekdays = models.JSONField(_("weekdays"), default=list, blank=True, help_text="0 = Monday")
    time_zone_mode = models.CharField(
        _("time zone"),
        max_length=12,
        choices=TimeZoneMode.choices,
        default=TimeZoneMode.ORGANIZATION,
    )
    pace = models.CharField(_("pace"), max_length=10, choices=Pace.choices, default=Pace.RATE)
    rate_per_second = models.PositiveIntegerField(_("messages per second"), default=80)
    stagger_min_seconds = models.PositiveIntegerField(_("minimum seconds between"), default=60)
    stagger_max_seconds = models.PositiveIntegerField(_("maximum seconds between"), default=120)
    quiet_start = models.TimeField(_("quiet hours start"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours end"), null=True, blank=True)
    quiet_action = models.CharField(
        _("during quiet hours"),
        max_length=8,
        choices=QuietAction.choices,
        default=QuietAction.DEFER,
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    run = models.PositiveIntegerField(default=0, help_text=_("Current run (recurring campaigns)"))
    run_date = models.DateField(null=True, blank=True)
    expanded_run = models.PositiveIntegerField(default=0, help_text=_("Last fully expanded run"))
    # Backoff state shared by every dispatcher of this campaign.
    throttled_until = models.DateTimeField(null=True, blank=True)
    rate_factor = models.FloatField(default=1.0)
    dispatcher_token = models.CharField(max_length=36, blank=True)
    dispatcher_lease_until = models.DateTimeField(null=True, blank=True)
    # Counters, moved with F() as recipients change state.
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    read = models.PositiveIntegerField(default=0)
    replied = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Used by the scheduler tick: due campaigns.
            models.Index(fields=["status", "next_run_at"], name="campaign_due"),
        ]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")

    def __str__(self):
        return self.name

    @property
    def is_recurring(self) -> bool:
        return self.schedule in (self.Schedule.DAILY, self.Schedule.WEEKLY)

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def progress_percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class CampaignRecipient(TenantModel):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        # The send may or may not have reached WhatsApp (a lost answer, a killed worker): never
        # re-sent blindly; resolved by the status webhook's callback data or, after the
        # reconcile window with no evidence, queued again.
        UNKNOWN = "unknown", _("Checking")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        REPLIED = "replied", _("Replied")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    class Reason(models.TextChoices):
        OPTED_OUT = "opted_out", _("Opted out")
        NO_OPT_IN = "no_opt_in", _("No opt-in")
        INVALID_NUMBER = "invalid_number", _("Invalid number")
        DUPLICATE = "duplicate", _("Duplicate")
        QUIET_HOURS = "quiet_hours", _("Quiet hours")
        MISSING_VARIABLE = "missing_variable", _("Missing variable")
        CANCELLED = "cancelled", _("Campaign cancelled")
        SEND_ERROR = "send_error", _("WhatsApp refused the message")
        DELIVERY_FAILED = "delivery_failed", _("Delivery failed")
        RETRIES_EXHAUSTED = "retries_exhausted", _("Too many retries")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    run = models.PositiveIntegerField(default=1)
    contact = models.ForeignKey(
        "inbox.Contact", on_delete=models.CASCADE, related_name="campaign_recipients"
    )
    to = models.CharField(max_length=32)
    components = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_detail = models.CharField(max_length=500, blank=True)
    wamid = models.CharField(max_length=128, null=True, blank=True, unique=True)
    claim_token = models.CharField(max_length=36, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reply = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "run", "contact"], name="unique_recipient_per_run"
            )
        ]
        indexes = [
            # The dispatch claim: queued rows of a campaign that are due.
            models.Index(fields=["campaign", "status", "next_attempt_at"], name="recipient_claim"),
            # Reply attribution: a contact's latest sends.
            models.Index(fields=["contact", "-sent_at"], name="recipient_contact_recent"),
        ]
        verbose_name = _("campaign recipient")
        verbose_name_plural = _("campaign recipients")

    def __str__(self):
        return f"{self.campaign_id} → {self.to} ({self.status})"
