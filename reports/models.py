import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization, TenantModel


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionDenied("The audit log is append-only.")

    def delete(self):
        raise PermissionDenied("The audit log is append-only.")


class AuditEvent(models.Model):
    """One security-relevant action: who, from where, when, what, on what. Append-only: rows
    are never updated or deleted (``save`` of an existing row, ``delete`` and bulk
    ``update``/``delete`` all raise)."""

    class Action(models.TextChoices):
        LOGIN = "login", _("Signed in")
        LOGIN_FAILED = "login_failed", _("Failed sign-in")
        LOGOUT = "logout", _("Signed out")
        MFA_ADDED = "mfa_added", _("Two-factor method added")
        MFA_REMOVED = "mfa_removed", _("Two-factor method removed")
        MFA_RESET = "mfa_reset", _("Recovery codes regenerated")
        MFA_FAILED = "mfa_failed", _("Failed two-factor code")
        MEMBER_ADDED = "member_added", _("Member added")
        ROLE_CHANGED = "role_changed", _("Role changed")
        MEMBER_REMOVED = "member_removed", _("Member removed")
        SETTINGS_CHANGED = "settings_changed", _("Organization settings changed")
        CREDENTIALS_CHANGED = "credentials_changed", _("Number credentials changed")
        API_KEY_CREATED = "api_key_created", _("API key created")
        API_KEY_REVOKED = "api_key_revoked", _("API key revoked")
        CONTACT_EXPORTED = "contact_exported", _("Contact data exported")
        CONTACT_ERASED = "contact_erased", _("Contact data erased")
        RETENTION_CHANGED = "retention_changed", _("Retention policy changed")
        RETENTION_PURGED = "retention_purged", _("Old messages purged")
        OUTBOX_RETRIED = "outbox_retried", _("Stopped follow-up work retried")
        OUTBOX_DISCARDED = "outbox_discarded", _("Stopped follow-up work discarded")

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(_("actor"), max_length=255, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    action = models.CharField(_("action"), max_length=32, choices=Action.choices)
    target_type = models.CharField(_("target type"), max_length=64, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_label = models.CharField(_("target"), max_length=255, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_recent")]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionDenied("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied("The audit log is append-only.")


class RetentionPolicy(models.Model):
    """How long an organization keeps conversation content (LGPD: keep no longer than needed)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="retention_policy"
    )
    message_days = models.PositiveIntegerField(
        _("keep messages for (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(7)],
        help_text=_("Empty: keep forever. Older messages and their media are deleted daily."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("retention policy")
        verbose_name_plural = _("retention policies")

    def __str__(self):
        return f"{self.organization}: {self.message_days or '∞'}"


class DailyStat(TenantModel):
    """Pre-aggregated figures of one organization's local day, per agent.

    ``agent`` is the team member who answered first (conversations, first responses) or who
    resolved (resolutions); the row with ``agent`` NULL holds the rest (AI and unanswered
    conversations) and the organization-wide counters (messages, contacts, opt-outs, heat map,
    AI cost, campaigns). Summing every row of a day gives the organization's totals. Response
    and resolution times are kept as sorted lists of seconds so medians and p90 stay exact.
    """

    day = models.DateField()
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    conversations = models.PositiveIntegerField(default=0)
    messages_in = models.PositiveIntegerField(default=0)
    messages_out = models.PositiveIntegerField(default=0)
    new_contacts = models.PositiveIntegerField(default=0)
    first_response_seconds = models.JSONField(default=list)
    resolution_seconds = models.JSONField(default=list)
    resolved = models.PositiveIntegerField(default=0)
    resolved_by_ai = models.PositiveIntegerField(default=0)
    handoffs = models.PositiveIntegerField(default=0)
    opt_outs = models.PositiveIntegerField(default=0)
    hourly = models.JSONField(default=list, help_text="Conversations started per local hour")
    ai_cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    campaign_sent = models.PositiveIntegerField(default=0)
    campaign_replied = models.PositiveIntegerField(default=0)
    csat_responses = models.PositiveIntegerField(default=0)
    csat_score_total = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "agent"], name="unique_daily_stat"
            ),
            models.UniqueConstraint(
                fields=["organization", "day"],
                condition=models.Q(agent__isnull=True),
                name="unique_daily_stat_org_row",
            ),
        ]
        indexes = [models.Index(fields=["organization", "day"], name="daily_stat_org_day")]
        verbose_name = _("daily statistic")
        verbose_name_plural = _("daily statistics")

    def __str__(self):
        return f"{self.organization_id} {self.day} {self.agent_id or '-'}"


class ErasedContact(TenantModel):
    """The mark left on a contact whose personal data was erased (LGPD), with who did it."""

    contact = models.OneToOneField(
        "inbox.Contact", on_delete=models.CASCADE, related_name="erasure"
    )
    token = models.CharField(_("anonymous token"), max_length=32)
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    erased_at = models.DateTimeField(_("erased at"), auto_now_add=True)

    class Meta:
        ordering = ["-erased_at"]
        verbose_name = _("erased contact")
        verbose_name_plural = _("erased contacts")

    def __str__(self):
        return self.token


class ReportSettings(models.Model):
    """Per-organization report options: the CSAT survey and the weekly report email."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="report_settings"
    )
    csat_enabled = models.BooleanField(
        _("ask customers to rate the service"),
        default=False,
        help_text=_(
            "After a chat is resolved, the customer gets one question with three buttons "
            "(only while the 24-hour window is open)."
        ),
    )
    csat_question = models.CharField(
        _("question"),
        max_length=500,
        blank=True,
        help_text=_("Empty: “How would you rate our service?” in the organization's language."),
    )
    weekly_enabled = models.BooleanField(_("send a weekly report email"), default=False)
    weekly_weekday = models.PositiveSmallIntegerField(
        _("weekday"), choices=Weekday.choices, default=Weekday.MONDAY
    )
    weekly_hour = models.PositiveSmallIntegerField(
        _("hour"),
        default=8,
        choices=[(hour, f"{hour:02d}:00") for hour in range(24)],
        help_text=_("In the organization's time zone."),
    )
    weekly_recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name=_("recipients")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("report settings")
        verbose_name_plural = _("report settings")

    def __str__(self):
        return str(self.organization)


class CsatSurvey(TenantModel):
    """The satisfaction question sent after one resolution (at most one per resolution)."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    chat = models.ForeignKey("inbox.Chat", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("inbox.Contact", on_delete=models.CASCADE, related_name="+")
    resolution = models.OneToOneField(
        "inbox.Message",
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The chat's “resolved” timeline entry this survey follows.",
    )
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    assistant = models.ForeignKey(
        "assistants.Assistant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("AI assistant"),
        help_text=_("Set when the AI resolved the conversation alone."),
    )
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]
        indexes = [models.Index(fields=["chat", "-sent_at"], name="csat_survey_chat_recent")]
        verbose_name = _("CSAT survey")
        verbose_name_plural = _("CSAT surveys")

    def __str__(self):
        return f"{self.contact_id} {self.sent_at:%Y-%m-%d %H:%M}"


class CsatResponse(TenantModel):
    """A customer's answer to a survey (the first one only)."""

    SCORES = {3: _("Great"), 2: _("OK"), 1: _("Bad")}

    survey = models.OneToOneField(CsatSurvey, on_delete=models.CASCADE, related_name="response")
    chat = models.ForeignKey("inbox.Chat", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("inbox.Contact", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    assistant = models.ForeignKey(
        "assistants.Assistant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("AI assistant"),
    )
    score = models.PositiveSmallIntegerField(
        _("score"), validators=[MinValueValidator(1), MaxValueValidator(3)]
    )
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    responded_at = models.DateTimeField(_("answered at"))

    class Meta:
        ordering = ["-responded_at"]
        indexes = [
            models.Index(fields=["organization", "responded_at"], name="csat_response_org_time")
        ]
        verbose_name = _("CSAT response")
        verbose_name_plural = _("CSAT responses")

    def __str__(self):
        return f"{self.score} · {self.responded_at:%Y-%m-%d %H:%M}"


class AssistantDailyStat(TenantModel):
    """Pre-aggregated figures of one AI assistant on one local day (see ``reports.stats``)."""

    day = models.DateField()
    assistant = models.ForeignKey(
        "assistants.Assistant", on_delete=models.CASCADE, related_name="+"
    )
    conversations = models.PositiveIntegerField(default=0)
    first_response_seconds = models.JSONField(default=list)
    resolved_by_ai = models.PositiveIntegerField(default=0)
    handoffs = models.PositiveIntegerField(default=0)
    ai_cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    csat_responses = models.PositiveIntegerField(default=0)
    csat_score_total = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "assistant"], name="unique_assistant_daily_stat"
            )
        ]
        verbose_name = _("assistant daily statistic")
        verbose_name_plural = _("assistant daily statistics")

    def __str__(self):
        return f"{self.organization_id} {self.day} {self.assistant_id}"


class WeeklyReportDelivery(TenantModel):
    """One week's report email of an organization. The unique key on (organization,
    scheduled_for) is the claim: of two workers due at once, only the one whose row insert
    succeeds sends."""

    class Status(models.TextChoices):
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    scheduled_for = models.DateField(_("scheduled for"))
    period_first = models.DateField()
    period_last = models.DateField()
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.SENDING
    )
    recipients = models.JSONField(_("recipients"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        ordering = ["-scheduled_for"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "scheduled_for"], name="unique_weekly_report_delivery"
            )
        ]
        verbose_name = _("weekly report email")
        verbose_name_plural = _("weekly report emails")

    def __str__(self):
        return f"{self.organization_id} {self.scheduled_for}"


# --- Operational alerts (reports.alerts) --------------------------------------------------------


class AlertSettings(TenantModel):
    """An organization's alert thresholds, edited by its admins (Reports → Alerts)."""

    send_error_percent = models.PositiveSmallIntegerField(
        _("failed sends (%)"),
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Alert when at least this share of the last 15 minutes' sends failed."),
    )
    send_error_min_sends = models.PositiveIntegerField(
        _("counting from (sends)"),
        default=20,
        validators=[MinValueValidator(1)],
        help_text=_("Fewer sends than this in 15 minutes never raise the alert."),
    )
    ai_budget_percent = models.PositiveSmallIntegerField(
        _("AI budget used (%)"),
        default=80,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Alert when an assistant has spent this share of its monthly budget."),
    )
    quality_alerts = models.BooleanField(
        _("number quality"),
        default=True,
        help_text=_("Alert when WhatsApp flags a number or its quality drops to yellow or red."),
    )
    email = models.BooleanField(
        _("also by e-mail"), default=True, help_text=_("Admins get each alert by e-mail too.")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="unique_alert_settings")
        ]
        verbose_name = _("alert settings")
        verbose_name_plural = _("alert settings")

    def __str__(self):
        return str(self.organization_id)


class OpsSettings(models.Model):
    """The operator's thresholds for the whole installation (one row, the ops page)."""

    queue_backlog = models.PositiveIntegerField(
        _("queue backlog (tasks)"),
        default=1000,
        validators=[MinValueValidator(1)],
        help_text=_("Alert superusers when a worker cluster has this many tasks waiting."),
    )

    class Meta:
        verbose_name = _("operations settings")
        verbose_name_plural = _("operations settings")

    def __str__(self):
        return f"queue backlog {self.queue_backlog}"

    @classmethod
    def get(cls) -> "OpsSettings":
        return cls.objects.get_or_create(pk=1)[0]


class Alert(models.Model):
    """One episode of a condition: opened once when it starts, cleared when it is back to
    normal (the open row is the claim: one per scope, kind and subject)."""

    class Kind(models.TextChoices):
        SEND_ERRORS = "send_errors", _("Failed sends")
        NUMBER_QUALITY = "number_quality", _("Number quality")
        AI_BUDGET = "ai_budget", _("AI budget")
        QUEUE_BACKLOG = "queue_backlog", _("Queue backlog")
        OUTBOX_DEAD = "outbox_dead", _("Follow-up work stopped")

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )  # empty: the installation's (superusers')
    scope = models.CharField(max_length=30)  # "org:<id>" or "system"
    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=100, blank=True)  # a number, an assistant, a queue
    params = models.JSONField(default=dict)
    opened_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "kind", "subject"],
                condition=models.Q(cleared_at__isnull=True),
                name="one_open_alert_per_subject",
            )
        ]
        indexes = [models.Index(fields=["organization", "cleared_at"], name="alert_org_open")]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")

    def __str__(self):
        return f"{self.scope} {self.kind} {self.subject}"
