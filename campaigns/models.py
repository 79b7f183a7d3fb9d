"""Audiences (segments, static lists, consent history) and template campaigns with per-recipient
rows. The recipient table is the dispatch queue: claims, leases and wamids live on its rows, so a
worker killed mid-send, a restart or two workers at once can neither lose nor double a send."""

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass

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
    #  "lead_score_min": 1-10, "lead_score_max": 1-10,
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
    # "value": "name" | "attribute:city" | literal, "fallback": str}, or {"source": "assistant",
    # "assistant": code, "value": instruction, "fallback": str}. Also "conversion": {"kind":
    # "reply"|"tag"|"intent", "value": str} and "ai": {"state", "samples": {contact code:
    # {"texts", "errors", "edited"}}} (the previewed assistant texts, see campaigns.services).
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


# --- Automations --------------------------------------------------------------------------------


_extra_triggers: dict[str, object] = {}


def register_trigger(value: str, label) -> None:
    """Apps above campaigns add automation triggers from their ``ready()`` (appointments:
    "appointment booked"...); they fire them with ``campaigns.automations.automations_fire``."""
    if len(value) > 20:
        raise ValueError(f"Trigger {value!r} is longer than 20 characters")
    _extra_triggers[value] = label


def trigger_choices() -> list[tuple[str, object]]:
    return [*Automation.Trigger.choices, *_extra_triggers.items()]


@dataclass(frozen=True)
class ExtraAction:
    """An automation action another app provides (flows: "start a flow"). ``choices(org_id)``
    lists what the rule may pick (value, label); ``run(rule=, contact=, chat=, value=)`` does
    it and returns a line for the run log — ``chat()`` finds or opens the contact's chat only
    when called; raise ``campaigns.messaging.ActionSkipped`` to skip with a reason."""

    key: str
    label: object
    choices: Callable[[int], list[tuple[str, str]]]
    run: Callable[..., str]


_extra_actions: dict[str, ExtraAction] = {}


def register_action(key: str, label, *, choices, run) -> None:
    """Apps above campaigns add automation actions from their ``ready()``; campaigns never
    imports them. The rule stores the chosen value in ``action_extra[key]``."""
    if not key.isidentifier() or len(key) > 30:
        raise ValueError(f"Action key {key!r} must be an identifier of at most 30 characters")
    _extra_actions[key] = ExtraAction(key=key, label=label, choices=choices, run=run)


def extra_actions() -> list[ExtraAction]:
    return list(_extra_actions.values())


def extra_action(key: str) -> ExtraAction | None:
    return _extra_actions.get(key)


class Automation(TenantModel):
    """An event-driven rule: when ``trigger`` happens and the conditions hold, run the actions.

    Actions run in a fixed order (tags, assignment, AI, message, drip, webhook); each run is an
    ``AutomationRun``. Loops are cut three ways: automation-authored messages never trigger
    message rules, a rule never re-triggers itself (nor any rule earlier in the chain), and
    runs per contact are capped per time window.
    """

    class Trigger(models.TextChoices):
        KEYWORD = "keyword", _("Message received with a keyword")
        NEW_CONTACT = "new_contact", _("New contact")
        CHAT_RESOLVED = "chat_resolved", _("Chat resolved")
        NO_REPLY = "no_reply", _("No reply from the customer for N hours")
        TAG_ADDED = "tag_added", _("Tag added")
        CAMPAIGN_REPLY = "campaign_reply", _("Reply to a campaign")
        DATE_AHEAD = "date_ahead", _("A date attribute is N hours ahead")

    class AI(models.TextChoices):
        KEEP = "", _("Leave as it is")
        ON = "on", _("Turn the AI assistant on")
        OFF = "off", _("Turn the AI assistant off")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    is_active = models.BooleanField(_("active"), default=True)
    trigger = models.CharField(_("trigger"), max_length=20, choices=trigger_choices)
    keywords = models.CharField(
        _("keywords"),
        max_length=500,
        blank=True,
        help_text=_("Comma separated; matches a word or phrase anywhere in the message."),
    )
    trigger_tag = models.CharField(_("tag"), max_length=40, blank=True)
    trigger_campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("campaign"),
        help_text=_("Empty: a reply to any campaign."),
    )
    hours = models.PositiveIntegerField(
        _("hours"), default=24, help_text=_("No reply for / date ahead by this many hours.")
    )
    date_attribute = models.CharField(
        _("date attribute"),
        max_length=60,
        blank=True,
        help_text=_("Custom attribute holding a date or date and time, e.g. appointment_at."),
    )
    # Conditions
    condition_tags = models.JSONField(_("contact has all tags"), default=list, blank=True)
    condition_exclude_tags = models.JSONField(_("contact has none of"), default=list, blank=True)
    condition_attributes = models.JSONField(_("attributes equal"), default=dict, blank=True)
    window_start = models.TimeField(_("only from"), null=True, blank=True)
    window_end = models.TimeField(_("until"), null=True, blank=True)
    number = models.ForeignKey(
        "integrations.WhatsAppNumber",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("number"),
        help_text=_("Only chats on this number; also the number new conversations start from."),
    )
    # Actions
    action_tags = models.JSONField(_("add tags"), default=list, blank=True)
    action_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("assign to"),
    )
    action_ai = models.CharField(
        _("AI assistant"), max_length=3, choices=AI.choices, blank=True, default=AI.KEEP
    )
    action_text = models.TextField(
        _("send text"),
        max_length=4096,
        blank=True,
        help_text=_("Sent only while the 24-hour window is open; otherwise the template is sent."),
    )
    action_template = models.ForeignKey(
        "integrations.MessageTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("send template"),
    )
    action_drip = models.ForeignKey(
        "DripProgram",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("start drip"),
    )
    action_webhook = models.ForeignKey(
        "integrations.WebhookSubscription",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("call webhook"),
    )
    # Actions registered by other apps ({key: chosen value}; see ``register_action``).
    action_extra = models.JSONField(_("other actions"), default=dict, blank=True)
    # Loop guard
    max_runs = models.PositiveSmallIntegerField(_("at most this many runs per contact"), default=3)
    per_hours = models.PositiveIntegerField(_("every this many hours"), default=24)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            # Every event looks up the organization's active rules of one trigger.
            models.Index(fields=["organization", "trigger", "is_active"], name="automation_lookup")
        ]
        verbose_name = _("automation")
        verbose_name_plural = _("automations")

    def __str__(self):
        return self.name


class AutomationRun(TenantModel):
    """One firing of a rule for one contact, with what each action did."""

    class Outcome(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        PARTIAL = "partial", _("Partly failed")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="runs")
    contact = models.ForeignKey(
        "inbox.Contact", on_delete=models.CASCADE, related_name="automation_runs"
    )
    chat = models.ForeignKey(
        "inbox.Chat", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=20, choices=trigger_choices)
    # Time-based triggers fire once per key (e.g. the unanswered message, the attribute's date).
    key = models.CharField(max_length=120, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True)
    actions = models.JSONField(default=list, blank=True)  # [{"action", "ok", "detail"}]
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "key"],
                condition=~models.Q(key=""),
                name="unique_automation_run_key",
            )
        ]
        indexes = [
            # The loop guard: a rule's recent runs for a contact.
            models.Index(fields=["automation", "contact", "-created_at"], name="automation_run_cap")
        ]
        verbose_name = _("automation run")
        verbose_name_plural = _("automation runs")

    def __str__(self):
        return f"{self.automation_id} → {self.contact_id} ({self.outcome})"


# --- Drip programs ------------------------------------------------------------------------------


def _form_slug() -> str:
    import secrets

    return secrets.token_urlsafe(18)


class DripProgram(TenantModel):
    """A series of messages per enrolled contact: ordered steps, or a daily question."""

    class Kind(models.TextChoices):
        STEPS = "steps", _("Steps")
        QUESTION_OF_THE_DAY = "qotd", _("Question of the day")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.STEPS)
    is_active = models.BooleanField(_("active"), default=True)
    number = models.ForeignKey(
        "integrations.WhatsAppNumber",
        on_delete=models.RESTRICT,
        related_name="+",
        verbose_name=_("number"),
    )
    send_time = models.TimeField(
        _("question time"),
        default=datetime.time(9, 0),
        help_text=_("Question of the day: sent at this time in each contact's time zone."),
    )
    template = models.ForeignKey(
        "integrations.MessageTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("template when the window is closed"),
        help_text=_(
            "Question of the day: sent when the contact has not written in 24 hours; its first "
            "variable receives the question."
        ),
    )
    topics = models.CharField(
        _("topics"),
        max_length=500,
        blank=True,
        help_text=_("Comma separated; offered on the opt-in form."),
    )
    form_slug = models.CharField(max_length=40, unique=True, default=_form_slug, editable=False)
    form_enabled = models.BooleanField(_("public opt-in form"), default=True)
    form_intro = models.TextField(_("form introduction"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("drip program")
        verbose_name_plural = _("drip programs")

    def __str__(self):
        return self.name

    @property
    def is_qotd(self) -> bool:
        return self.kind == self.Kind.QUESTION_OF_THE_DAY

    @property
    def topic_list(self) -> list[str]:
        return [t.strip() for t in self.topics.split(",") if t.strip()]


class DripStep(TenantModel):
    """One message of a step program, due a delay after the previous one (or the enrolment),
    optionally moved to the next ``send_time`` in the contact's time zone."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    program = models.ForeignKey(DripProgram, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("position"), default=1)
    delay_days = models.PositiveSmallIntegerField(_("days after the previous step"), default=0)
    delay_hours = models.PositiveSmallIntegerField(_("hours after the previous step"), default=0)
    send_time = models.TimeField(
        _("at time of day"),
        null=True,
        blank=True,
        help_text=_("In the contact's time zone; empty: as soon as the delay has passed."),
    )
    text = models.TextField(
        _("text"), max_length=4096, blank=True, help_text=_("Sent while the window is open.")
    )
    template = models.ForeignKey(
        "integrations.MessageTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("template"),
        help_text=_("Sent when the 24-hour window is closed (or when there is no text)."),
    )

    class Meta:
        ordering = ["program", "position", "id"]
        verbose_name = _("drip step")
        verbose_name_plural = _("drip steps")

    def __str__(self):
        return f"{self.program_id} #{self.position}"


class DripQuestion(TenantModel):
    """A question of a question-of-the-day program, graded against its rubric."""

    class Language(models.TextChoices):
        PT = "pt", _("Portuguese")
        EN = "en", _("English")
        ES = "es", _("Spanish")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    program = models.ForeignKey(DripProgram, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveIntegerField(_("position"), default=0)
    text = models.TextField(_("question"), max_length=1000)
    topic = models.CharField(_("topic"), max_length=60, blank=True)
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.PT
    )
    rubric = models.TextField(
        _("rubric"), max_length=4000, help_text=_("What a good answer covers.")
    )

    class Meta:
        ordering = ["program", "position", "id"]
        verbose_name = _("question")
        verbose_name_plural = _("questions")

    def __str__(self):
        return self.text[:60]


class DripEnrolment(TenantModel):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        STOPPED = "stopped", _("Stopped")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    program = models.ForeignKey(DripProgram, on_delete=models.CASCADE, related_name="enrolments")
    contact = models.ForeignKey(
        "inbox.Contact", on_delete=models.CASCADE, related_name="drip_enrolments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    topic = models.CharField(_("topic"), max_length=60, blank=True)
    language = models.CharField(_("language"), max_length=2, blank=True)
    source = models.CharField(max_length=20, blank=True)  # form, automation, staff
    steps_sent = models.PositiveIntegerField(default=0)
    next_due_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    stopped_reason = models.CharField(max_length=100, blank=True)
    enrolled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "contact"], name="unique_drip_enrolment")
        ]
        indexes = [
            # The drip tick: active enrolments that are due.
            models.Index(fields=["status", "next_due_at"], name="drip_enrolment_due")
        ]
        verbose_name = _("drip enrolment")
        verbose_name_plural = _("drip enrolments")

    def __str__(self):
        return f"{self.program_id} ← {self.contact_id} ({self.status})"


class DripDelivery(TenantModel):
    """One step or question sent to an enrolled contact; for questions, the answer and grade."""

    enrolment = models.ForeignKey(
        DripEnrolment, on_delete=models.CASCADE, related_name="deliveries"
    )
    step = models.ForeignKey(
        DripStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    question = models.ForeignKey(
        DripQuestion, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answer = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    feedback = models.TextField(blank=True)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = _("drip delivery")
        verbose_name_plural = _("drip deliveries")

    def __str__(self):
        return f"{self.enrolment_id} @ {self.sent_at:%Y-%m-%d}"
