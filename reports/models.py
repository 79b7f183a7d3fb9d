from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.validators import MinValueValidator
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
