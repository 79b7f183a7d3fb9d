import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel
from integrations.crypto import EncryptedTextField, mask


def default_handoff_keywords() -> list[str]:
    """Requests for a person are recognised in pt/en/es by ``assistants.handoff``; these are
    only an organization's own extra phrases."""
    return []


# The defaults of old, now covered (better: "por pessoa" is no request) by ``assistants.handoff``.
LEGACY_HANDOFF_KEYWORDS = frozenset({"atendente", "humano", "human", "pessoa"})


CONTACT_FIELDS = ("name", "phone", "email", "tags", "attributes", "language")


def default_contact_fields() -> list[str]:
    """What the model needs to be personal; phone and e-mail only when an owner allows it."""
    return ["name", "tags", "attributes", "language"]


def default_business_days() -> list[int]:
    return [0, 1, 2, 3, 4]


class AISettings(TenantModel):
    """The organization's OpenAI-compatible server; empty values fall back to the environment,
    and without any key the offline provider answers from the knowledge base."""

    api_key = EncryptedTextField(_("API key"), blank=True)
    base_url = models.URLField(
        _("base URL"),
        blank=True,
        help_text=_("Any OpenAI-compatible server, e.g. https://api.openai.com/v1"),
    )
    embedding_model = models.CharField(
        _("embedding model"), max_length=100, default="text-embedding-3-small"
    )
    transcription_model = models.CharField(
        _("transcription model"), max_length=100, default="whisper-1"
    )
    timeout_seconds = models.FloatField(_("model timeout (seconds)"), default=20.0)
    embedding_query_prefix = models.CharField(
        _("embedding query prefix"),
        max_length=60,
        blank=True,
        help_text=_('What the embedding model wants before a question, e.g. "query: " for e5.'),
    )
    embedding_passage_prefix = models.CharField(
        _("embedding passage prefix"),
        max_length=60,
        blank=True,
        help_text=_('What it wants before a knowledge passage, e.g. "passage: " for e5.'),
    )
    synonyms = models.TextField(
        _("synonyms"),
        blank=True,
        help_text=_(
            "One group per line, comma-separated, e.g. “uniodonto, convênio”: customers' words "
            "for what your knowledge calls otherwise."
        ),
    )
    min_relevance = models.FloatField(
        _("minimum relevance"),
        default=0.35,
        help_text=_(
            "Share of the question a passage must cover (0–1) to be used; below it the "
            "assistant says it does not know or calls a person."
        ),
    )
    prices = models.JSONField(
        _("model prices"),
        default=dict,
        blank=True,
        help_text=_(
            "USD per million tokens (input, output) for chat and embedding models, per minute "
            "for transcription; models not listed use the built-in prices."
        ),
    )
    min_similarity = models.FloatField(
        _("minimum embedding similarity"),
        default=0.3,
        help_text=_("Cosine similarity (0–1) a passage needs when found by embeddings."),
    )
    handoff_phrases = models.TextField(
        _("handoff phrases"),
        blank=True,
        help_text=_(
            "One a line: the customers' words for “I want a person”, for every assistant, besides "
            "the built-in ones in Portuguese, English and Spanish (e.g. “quero a doutora”)."
        ),
    )

    class FollowUpAction(models.TextChoices):
        REMIND = "remind", _("Remind the chat's assignee")
        TEMPLATE = "template", _("Send the follow-up template to the customer")
        OFF = "off", _("Do nothing")

    follow_up_action = models.CharField(
        _("on the analysis' follow-up date"),
        max_length=10,
        choices=FollowUpAction.choices,
        default=FollowUpAction.REMIND,
        help_text=_(
            "What happens on the follow-up date the conversation analysis suggests. A customer "
            "who opted out never gets the template: the assignee is reminded instead."
        ),
    )
    follow_up_template = models.ForeignKey(
        "integrations.MessageTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("follow-up template"),
        help_text=_(
            "An approved template with at most one variable (filled with the customer's first "
            "name). Sent from the chat's own number, through its template of the same name."
        ),
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="unique_ai_settings")]
        verbose_name = _("AI settings")
        verbose_name_plural = _("AI settings")

    def __str__(self):
        return f"AI settings · {self.organization_id}"

    @property
    def masked_api_key(self) -> str:
        return mask(self.api_key)


class Assistant(TenantModel):
    class Tone(models.TextChoices):
        FRIENDLY = "friendly", _("Friendly")
        PROFESSIONAL = "professional", _("Professional")
        FORMAL = "formal", _("Formal")
        CONCISE = "concise", _("Concise")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    purpose = models.CharField(_("purpose"), max_length=255, blank=True)
    instructions = models.TextField(_("instructions (system prompt)"), blank=True)
    private_notes = models.TextField(
        _("private notes for the assistant"),
        blank=True,
        help_text=_(
            "Discount codes, internal phone numbers, rules for the team: the assistant may use "
            "them to decide, but a reply that contains a code, number, e-mail, link or passage "
            "from them is withheld and the chat goes to a person."
        ),
    )
    contact_fields = models.JSONField(
        _("contact fields the assistant sees"),
        default=default_contact_fields,
        blank=True,
        help_text=_("Of: name, phone, email, tags, attributes, language."),
    )
    tone = models.CharField(_("tone"), max_length=20, choices=Tone.choices, default=Tone.FRIENDLY)
    language = models.CharField(_("language"), max_length=10, default="pt-br")
    model = models.CharField(_("model"), max_length=100, default="gpt-4o-mini")
    temperature = models.FloatField(_("temperature"), default=0.3)
    max_tokens = models.PositiveIntegerField(_("max tokens per answer"), default=400)
    business_hours_enabled = models.BooleanField(_("only answer in business hours"), default=False)
    business_days = models.JSONField(_("business days"), default=default_business_days, blank=True)
    opens_at = models.TimeField(_("opens at"), null=True, blank=True)
    closes_at = models.TimeField(_("closes at"), null=True, blank=True)
    outside_hours_message = models.TextField(_("message outside business hours"), blank=True)
    greeting = models.TextField(_("greeting"), blank=True)
    handoff_keywords = models.JSONField(
        _("handoff keywords"), default=default_handoff_keywords, blank=True
    )
    handoff_on_low_confidence = models.BooleanField(_("hand off when unsure"), default=True)
    sensitive_topics = models.JSONField(_("sensitive topics"), default=list, blank=True)
    max_turns_without_resolution = models.PositiveSmallIntegerField(
        _("hand off after this many answers without resolution"), default=8
    )
    handoff_message = models.TextField(
        _("handoff message"),
        default="Vou chamar alguém da nossa equipe para continuar o atendimento. Um momento!",
    )
    handoff_target = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("hand off to"),
        help_text=_("Empty: the chat becomes unassigned and open."),
    )

    class HandoffRule(models.TextChoices):
        TARGET = "target", _("The chosen person (or unassigned)")
        ROUND_ROBIN = "round_robin", _("Round robin among agents")

    handoff_rule = models.CharField(
        _("assign handed-off chats to"),
        max_length=12,
        choices=HandoffRule.choices,
        default=HandoffRule.TARGET,
        help_text=_("Round robin: each handoff goes to the next agent or operator in turn."),
    )
    handoff_last_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    handoff_wait_minutes = models.PositiveSmallIntegerField(
        _("expected wait for a person (minutes)"),
        default=0,
        help_text=_("Told to the customer on handoff during opening hours; 0: not mentioned."),
    )
    handoff_wait_message = models.TextField(
        _("expected wait message"),
        blank=True,
        default="A espera estimada é de cerca de {minutes} minutos.",
        help_text=_("Added to the handoff message while open; {minutes} is replaced."),
    )
    handoff_closed_message = models.TextField(
        _("handoff message when closed"),
        blank=True,
        default="Nossa equipe volta {when} e responde você assim que abrir.",
        help_text=_("Added to the handoff message outside opening hours; {when} is replaced."),
    )
    pause_on_human_reply = models.BooleanField(_("pause when a team member replies"), default=True)
    default_for_numbers = models.ManyToManyField(
        "integrations.WhatsAppNumber",
        blank=True,
        related_name="default_assistants",
        verbose_name=_("default for numbers"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    enable_for_new_chats = models.BooleanField(
        _("turn on for new chats"),
        default=True,
        help_text=_("New conversations on its numbers start with the assistant on."),
    )
    monthly_budget = models.DecimalField(
        _("monthly budget (USD)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Auto-replies stop when this month's estimated cost exceeds it."),
    )
    budget_alerted_month = models.CharField(max_length=7, blank=True, editable=False)
    version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("assistant")
        verbose_name_plural = _("assistants")

    def __str__(self):
        return self.name


class AssistantVersion(TenantModel):
    """A snapshot of an assistant's configuration; replies record the version that answered."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    snapshot = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["assistant", "number"], name="unique_version_number")
        ]
        verbose_name = _("assistant version")
        verbose_name_plural = _("assistant versions")

    def __str__(self):
        return f"{self.assistant_id} v{self.number}"


class KnowledgeSource(TenantModel):
    class Kind(models.TextChoices):
        FILE = "file", _("File (PDF, DOCX, TXT, Markdown)")
        TEXT = "text", _("Pasted text")
        FAQ = "faq", _("Questions and answers")
        URL = "url", _("Web page text")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=255)
    file = models.FileField(_("file"), upload_to="knowledge/%Y/%m/", blank=True)
    url = models.URLField(_("address"), blank=True)
    text = models.TextField(_("text"), blank=True)
    faq = models.JSONField(_("questions and answers"), default=list, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    embedded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("knowledge source")
        verbose_name_plural = _("knowledge sources")

    def __str__(self):
        return self.title


class KnowledgeChunk(TenantModel):
    """A retrievable passage. Indexed lexically (PostgreSQL full-text or SQLite FTS5, see the
    migrations) and, when the provider offers embeddings, by vector."""

    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="chunks")
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    text = models.TextField()
    embedding = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["source", "position"]
        verbose_name = _("knowledge chunk")
        verbose_name_plural = _("knowledge chunks")

    def __str__(self):
        return self.text[:60]


class UsageRecord(TenantModel):
    class Kind(models.TextChoices):
        REPLY = "reply", _("Auto-reply")
        PLAYGROUND = "playground", _("Playground")
        ANALYSIS = "analysis", _("Analysis")
        GRADING = "grading", _("Grading")
        CAMPAIGN = "campaign", _("Campaign text")
        EMBEDDING = "embedding", _("Embeddings")
        TRANSCRIPTION = "transcription", _("Transcription")

    assistant = models.ForeignKey(
        Assistant, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    model = models.CharField(max_length=100, blank=True)
    month = models.CharField(max_length=7, db_index=True, help_text="YYYY-MM")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    # Ten places: one query's embedding costs about a millionth of a dollar.
    cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["assistant", "month"], name="usage_assistant_month")]
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")

    def __str__(self):
        return f"{self.kind} {self.tokens_in}/{self.tokens_out}"


class ReplyJob(TenantModel):
    """The auto-reply claim of one chat: which customer message is the latest to answer, which
    was answered last, and who holds the claim. Guarantees one reply per burst, in order."""

    chat = models.OneToOneField("inbox.Chat", on_delete=models.CASCADE, related_name="reply_job")
    last_inbound_id = models.BigIntegerField(default=0)
    answered_inbound_id = models.BigIntegerField(default=0)
    due_at = models.DateTimeField()
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reply job")
        verbose_name_plural = _("reply jobs")

    def __str__(self):
        return f"reply job {self.chat_id}"


class ConversationAnalysis(TenantModel):
    class Sentiment(models.TextChoices):
        POSITIVE = "positive", _("Positive")
        NEUTRAL = "neutral", _("Neutral")
        NEGATIVE = "negative", _("Negative")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    chat = models.ForeignKey("inbox.Chat", on_delete=models.CASCADE, related_name="analyses")
    assistant = models.ForeignKey(Assistant, null=True, blank=True, on_delete=models.SET_NULL)
    summary = models.TextField(blank=True)
    intent = models.CharField(max_length=255, blank=True)
    sentiment = models.CharField(
        max_length=10, choices=Sentiment.choices, default=Sentiment.NEUTRAL
    )
    lead_score = models.PositiveSmallIntegerField(default=5)
    lead_score_reason = models.TextField(blank=True)
    next_step = models.TextField(blank=True)
    follow_up_on = models.DateField(null=True, blank=True)
    offline = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class FollowUp(models.TextChoices):
        REMINDED = "reminded", _("Assignee reminded")
        SENT = "sent", _("Template sent")
        OPTED_OUT = "opted_out", _("Customer opted out: assignee reminded")
        NO_TEMPLATE = "no_template", _("Template not sendable: assignee reminded")
        SUPERSEDED = "superseded", _("A newer analysis replaced it")
        EXPIRED = "expired", _("Too late: skipped")
        OFF = "off", _("Follow-ups are off")

    # Claimed by one conditional UPDATE (``assistants.followups``): acted on once, never twice.
    follow_up_done_at = models.DateTimeField(null=True, blank=True)
    follow_up_result = models.CharField(max_length=12, choices=FollowUp.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        indexes = [
            # The follow-up tick's scan: only the analyses still waiting for their date.
            models.Index(
                fields=["follow_up_on"],
                condition=models.Q(follow_up_done_at__isnull=True),
                name="analysis_follow_up_due",
            )
        ]
        verbose_name = _("conversation analysis")
        verbose_name_plural = _("conversation analyses")

    def __str__(self):
        return f"analysis {self.chat_id}"
