import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel, tenant_key
from inbox.media import media_upload_to
from integrations.providers import Capabilities, capabilities_for


class Contact(TenantModel):
    """A customer reachable on WhatsApp. ``phone`` is E.164; ``wa_id`` is Meta's digits-only id."""

    organization = tenant_key(db_index=False)  # unique_contact_wa_id starts with it

    class OptIn(models.TextChoices):
        UNKNOWN = "unknown", _("Unknown")
        OPTED_IN = "opted_in", _("Opted in")
        OPTED_OUT = "opted_out", _("Opted out")

    class Stage(models.TextChoices):
        LEAD = "lead", _("Lead")
        CONTACTED = "contacted", _("Contacted")
        REPLIED = "replied", _("Replied")
        CUSTOMER = "customer", _("Customer")
        LOST = "lost", _("Lost")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    wa_id = models.CharField(_("WhatsApp ID"), max_length=32)
    phone = models.CharField(_("phone"), max_length=20, help_text=_("E.164, e.g. +5511999990000"))
    profile_name = models.CharField(_("WhatsApp profile name"), max_length=255, blank=True)
    name = models.CharField(_("name"), max_length=255, blank=True)
    email = models.EmailField(_("email"), blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    opt_in = models.CharField(
        _("opt-in"), max_length=12, choices=OptIn.choices, default=OptIn.UNKNOWN
    )
    opt_in_at = models.DateTimeField(_("opt-in changed at"), null=True, blank=True)
    opt_in_source = models.CharField(_("opt-in source"), max_length=32, blank=True)
    stage = models.CharField(_("stage"), max_length=12, choices=Stage.choices, default=Stage.LEAD)
    # Set once, when the contact first becomes a customer; ``conversion_source`` says what did it
    # ("campaign:<code>", "staff", "import"), so a campaign counts the conversions it caused.
    converted_at = models.DateTimeField(_("customer since"), null=True, blank=True)
    conversion_source = models.CharField(_("conversion source"), max_length=64, blank=True)
    # The latest conversation analysis's lead score (1–10), kept here so segments can filter on it.
    lead_score = models.PositiveSmallIntegerField(_("lead score"), null=True, blank=True)
    lead_score_at = models.DateTimeField(_("lead score updated at"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    # Set by the LGPD erasure (``inbox.contacts.contact_erase``): the row stays, anonymous, so
    # reports keep their counts; the API no longer shows it.
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "phone"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "wa_id"], name="unique_contact_wa_id")
        ]
        indexes = [models.Index(fields=["organization", "phone"])]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.profile_name or self.phone


class Priority(models.IntegerChoices):
    NONE = 0, _("No priority")
    LOW = 1, _("Low")
    MEDIUM = 2, _("Medium")
    HIGH = 3, _("High")
    URGENT = 4, _("Urgent")


class Chat(TenantModel):
    """The conversation thread of one contact with one of the organization's numbers."""

    organization = tenant_key(db_index=False)  # chat_org_recent and others start with it

    Priority = Priority

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending")
        RESOLVED = "resolved", _("Resolved")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    contact = models.ForeignKey(  # unique_chat_per_number starts with it
        Contact, on_delete=models.CASCADE, related_name="chats", db_index=False
    )
    number = models.ForeignKey(
        "integrations.WhatsAppNumber", on_delete=models.CASCADE, related_name="chats"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_chats",
        verbose_name=_("assignee"),
        db_index=False,  # chat_assignee_recent starts with it
    )
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    window_expires_at = models.DateTimeField(
        _("service window closes at"),
        null=True,
        blank=True,
        help_text=_("Last customer message + 24 h; after it only templates may be sent."),
    )
    ai_enabled = models.BooleanField(_("AI assistant on"), default=False)
    # The router handler (``inbox.router``) that gets this chat's next customer message first:
    # a flow waiting for an answer, a booking in progress. Released by a person's reply, by
    # "AI off", by its handler, or when ``held_until`` passes.
    held_by = models.CharField(_("held by"), max_length=20, blank=True, default="")
    held_until = models.DateTimeField(_("held until"), null=True, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    # Set when an assistant hands the chat to the team; cleared by a person's reply.
    waiting_since = models.DateTimeField(_("waiting for a person since"), null=True, blank=True)
    seq = models.PositiveBigIntegerField(default=0, help_text=_("Last live-event sequence number"))
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.NONE
    )
    # Hidden from the open list until then; the periodic tick reopens it (inbox.tasks).
    snoozed_until = models.DateTimeField(_("snoozed until"), null=True, blank=True, db_index=True)
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="chats",
        verbose_name=_("team"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-last_message_at"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "number"], name="unique_chat_per_number")
        ]
        indexes = [
            models.Index(
                fields=["organization", "status", "-last_message_at"], name="chat_org_status_recent"
            ),
            models.Index(fields=["organization", "-last_message_at"], name="chat_org_recent"),
            models.Index(fields=["assignee", "-last_message_at"], name="chat_assignee_recent"),
            # The tab counts, from the index alone (no table reads).
            models.Index(
                fields=["organization", "status", "assignee"], name="chat_org_status_assignee"
            ),
            # The tag filter's vocabulary: only tagged chats, however many chats there are.
            models.Index(fields=["organization"], condition=~Q(tags=[]), name="chat_org_tagged"),
        ]
        verbose_name = _("chat")
        verbose_name_plural = _("chats")

    def __str__(self):
        return f"{self.contact} · {self.number.display_phone_number}"

    @property
    def has_service_window(self) -> bool:
        """Whether the number's provider limits free-form messages to a window after the
        customer's last message (the Cloud API's 24 hours); without one, text always goes."""
        return capabilities_for(self.number).service_window is not None

    @property
    def window_is_open(self) -> bool:
        """Whether free-form messages may be sent now (else only a template may)."""
        if not self.has_service_window:
            return True
        return self.window_expires_at is not None and self.window_expires_at > timezone.now()

    @property
    def capabilities(self) -> Capabilities:
        """What the chat's number can send (templates, reactions, media...), for the composer."""
        return capabilities_for(self.number)


class Message(TenantModel):
    organization = tenant_key(db_index=False)  # message_org_time starts with it

    class Direction(models.TextChoices):
        INBOUND = "in", _("Inbound")
        OUTBOUND = "out", _("Outbound")
        # Team-only timeline entries (private notes, "Ana assigned the chat to Bruno"): never
        # sent to WhatsApp, never shown to assistants as conversation.
        INTERNAL = "int", _("Internal")

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")
        AUDIO = "audio", _("Audio")
        DOCUMENT = "document", _("Document")
        STICKER = "sticker", _("Sticker")
        LOCATION = "location", _("Location")
        CONTACTS = "contacts", _("Contacts")
        INTERACTIVE = "interactive", _("Interactive")
        BUTTON = "button", _("Button")
        REACTION = "reaction", _("Reaction")
        TEMPLATE = "template", _("Template")
        ORDER = "order", _("Order")
        SYSTEM = "system", _("System")
        UNSUPPORTED = "unsupported", _("Unsupported")
        NOTE = "note", _("Private note")
        ACTIVITY = "activity", _("Activity")

    class Status(models.TextChoices):
        # Ordered: a status only ever moves forward (failed is final).
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        RECEIVED = "received", _("Received")

    class Author(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        USER = "user", _("Team member")
        ASSISTANT = "assistant", _("AI assistant")
        CAMPAIGN = "campaign", _("Campaign")
        AUTOMATION = "automation", _("Automation")
        SYSTEM = "system", _("System")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    chat = models.ForeignKey(  # message_chat_time starts with it
        Chat, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    number = models.ForeignKey(
        "integrations.WhatsAppNumber", on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    mentions = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="mentioned_in"
    )
    type = models.CharField(max_length=12, choices=Type.choices, default=Type.TEXT)
    text = models.TextField(blank=True, help_text=_("Body or caption, for previews and search"))
    content = models.JSONField(default=dict, blank=True)
    wamid = models.CharField(max_length=128, null=True, blank=True)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    reply_to_wamid = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=255, blank=True)
    error_details = models.TextField(blank=True)
    author_type = models.CharField(max_length=12, choices=Author.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_ref = models.CharField(
        max_length=64, blank=True, help_text=_("Assistant, campaign or automation code")
    )
    # Who answered this customer message: the router handler that claimed it ("consent",
    # "csat", "drip", "assistant"...), "person" when a teammate replied, "" when nobody has yet.
    handled_by = models.CharField(_("handled by"), max_length=20, blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["number", "wamid"],
                condition=models.Q(wamid__isnull=False),
                name="unique_wamid_per_number",
            )
        ]
        indexes = [
            models.Index(fields=["chat", "timestamp"], name="message_chat_time"),
            models.Index(fields=["organization", "timestamp"], name="message_org_time"),  # reports
            # Outbound messages not sent yet, a few among millions: the sweeps for lost and
            # interrupted sends (every 15 s and 5 min) read only these.
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="pending"),
                name="message_unsent",
            ),
        ]
        verbose_name = _("message")
        verbose_name_plural = _("messages")

    def __str__(self):
        return f"{self.get_direction_display()} {self.type}: {self.text[:40]}"


class Media(TenantModel):
    """A file a customer or a teammate sent. ``filename`` is the sender's name for it (cleaned);
    ``file`` is stored under a random key of the organization's (``inbox.media``) and served only
    through ``url``, the authenticated view."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="media"
    )
    meta_media_id = models.CharField(max_length=64, blank=True)
    mime_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    file = models.FileField(upload_to=media_upload_to, max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("media")
        verbose_name_plural = _("media")

    def __str__(self):
        return self.filename or self.meta_media_id or f"media {self.pk}"

    @property
    def url(self) -> str:
        """Stable per row, whatever the storage: the view checks who asks, then serves."""
        return reverse("media_file", kwargs={"code": self.code})


class OrphanStatus(TenantModel):
    """A delivery status whose message we do not know yet (its status webhook beat the send
    call's response, or it belongs to a message sent outside Porfin). Applied and deleted when
    the message's wamid is recorded; otherwise kept as the record of an orphan."""

    number = models.ForeignKey(
        "integrations.WhatsAppNumber", on_delete=models.CASCADE, related_name="+"
    )
    wamid = models.CharField(max_length=128)
    status = models.CharField(max_length=10)
    timestamp = models.DateTimeField()
    error = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["number", "wamid", "status"], name="unique_orphan_status"
            )
        ]
        verbose_name = _("orphaned status")
        verbose_name_plural = _("orphaned statuses")

    def __str__(self):
        return f"{self.wamid} {self.status}"


class QuickReply(TenantModel):
    """A canned response; typing ``/shortcut`` in the composer inserts its text."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    shortcut = models.SlugField(_("shortcut"), max_length=40)
    text = models.TextField(
        _("text"),
        max_length=4096,
        help_text=_("{{name}}, {{first_name}}, {{phone}} and {{agent}} are filled in when used."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set: only this member sees it; empty: the whole team's.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("only for"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["shortcut"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "shortcut"], name="unique_quick_reply_shortcut"
            )
        ]
        verbose_name = _("quick reply")
        verbose_name_plural = _("quick replies")

    def __str__(self):
        return f"/{self.shortcut}"


class ScheduledMessage(TenantModel):
    """A text a member wrote to go out later. Kept in the database, so a restart loses
    nothing; the periodic tick sends what is due (``inbox.scheduled``), and the 24 h window is
    checked then, not when it was written."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Scheduled")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Not sent")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="scheduled_messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(_("text"), max_length=4096)
    send_at = models.DateTimeField(_("send at"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(max_length=300, blank=True)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["send_at"]
        indexes = [models.Index(fields=["status", "send_at"], name="scheduled_due")]

    def __str__(self):
        return f"{self.chat_id} @ {self.send_at:%Y-%m-%d %H:%M}"


class Notification(TenantModel):
    """Something a member should see in the bell menu: a mention in a note, a snoozed chat
    back. Also pushed live to their open pages."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_notifications"
    )
    chat = models.ForeignKey(
        Chat, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "read_at", "-created_at"], name="notification_unread")
        ]

    def __str__(self):
        return self.text


class SavedView(TenantModel):
    """A member's named set of inbox filters (the list's query string)."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_inbox_views"
    )
    name = models.CharField(_("name"), max_length=60)
    query = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
