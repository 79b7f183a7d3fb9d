"""Appointments: the services catalogue, professionals' agendas, bookings and their reminders.

Times are stored in UTC (``starts_at``/``ends_at``); weekly hours are wall-clock times in the
organization's time zone, turned into instants day by day so DST changes fall where they should.
Each appointment also stores the span it blocks on its professional's agenda (its buffers
included): on PostgreSQL an exclusion constraint over that span makes a double booking
impossible whatever runs concurrently (migration 0002); on SQLite the booking service serialises
on the professional's row instead.
"""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import TenantModel

DEFAULT_KEYWORDS = "agendar, marcar, agendar consulta, agendamento, marcar consulta, book"


def _ics_token() -> str:
    return secrets.token_urlsafe(24)


class AgendaSettings(TenantModel):
    """Per-organization booking rules: notice, horizon, slot grid, keywords, reminders."""

    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"),
        default=120,
        help_text=_("Customers cannot book a slot that starts sooner than this."),
    )
    horizon_days = models.PositiveIntegerField(
        _("booking horizon (days)"), default=60, help_text=_("How far ahead customers may book.")
    )
    slot_step_minutes = models.PositiveIntegerField(
        _("slot grid (minutes)"), default=30, help_text=_("Slots start every so many minutes.")
    )
    keywords = models.CharField(
        _("booking keywords"),
        max_length=300,
        default=DEFAULT_KEYWORDS,
        help_text=_("Comma separated. A message that is one of them starts a booking."),
    )
    reminder_hours = models.CharField(
        _("reminders (hours before)"),
        max_length=60,
        default="24, 2",
        blank=True,
        help_text=_("Comma separated, e.g. '24, 2'. Empty: no reminders."),
    )
    reminder_template = models.CharField(
        _("reminder template"),
        max_length=120,
        blank=True,
        help_text=_(
            "Approved template used when the 24-hour window is closed (body parameters: name, "
            "service, date and time, professional; quick-reply buttons Confirm / Reschedule / "
            "Cancel). Do not title a button exactly like an opt-out keyword ('Cancelar'): the "
            "tap would opt the customer out."
        ),
    )
    waitlist_template = models.CharField(
        _("waiting-list template"),
        max_length=120,
        blank=True,
        help_text=_(
            "Approved template that offers a freed time when the 24-hour window is closed (body "
            "parameters: name, service, date and time, professional; quick-reply buttons Book it "
            "/ No, thanks). Empty: only customers with an open window get the offer."
        ),
    )
    address = models.CharField(_("address"), max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="unique_agenda_settings")
        ]
        verbose_name = _("agenda settings")
        verbose_name_plural = _("agenda settings")

    def __str__(self):
        return str(self.organization)

    def keyword_set(self) -> set[str]:
        return {k.strip().casefold() for k in self.keywords.split(",") if k.strip()}

    def reminder_offsets(self) -> list[int]:
        return _hours(self.reminder_hours)


def _hours(text: str) -> list[int]:
    offsets = set()
    for part in (text or "").split(","):
        part = part.strip()
        if part.isdigit() and 0 < int(part) <= 24 * 14:
            offsets.add(int(part))
    return sorted(offsets, reverse=True)


class Room(TenantModel):
    """A surgery, chair or room. Professionals who share one cannot overlap in it."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=80)
    lock_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("room")
        verbose_name_plural = _("rooms")

    def __str__(self):
        return self.name


class Professional(TenantModel):
    """Someone with an agenda: a team member (``user``) or an external professional without a
    login. ``ics_token`` is the secret of their calendar subscription feed (revocable)."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("login"),
        help_text=_("The team member whose agenda this is (empty for external professionals)."),
    )
    color = models.CharField(_("colour"), max_length=7, default="#2563eb")
    room = models.ForeignKey(
        Room,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="professionals",
        verbose_name=_("room"),
        help_text=_("Where they see patients; shared rooms cannot be double booked either."),
    )
    active = models.BooleanField(_("active"), default=True)
    ics_token = models.CharField(max_length=64, default=_ics_token, unique=True, editable=False)
    lock_version = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("professional")
        verbose_name_plural = _("professionals")

    def __str__(self):
        return self.name


class Service(TenantModel):
    """A bookable service or procedure; also the offer list assistants and campaigns quote."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    category = models.CharField(_("category"), max_length=60, blank=True)
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), default=30)
    buffer_before_minutes = models.PositiveIntegerField(_("buffer before (minutes)"), default=0)
    buffer_after_minutes = models.PositiveIntegerField(_("buffer after (minutes)"), default=0)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2, null=True, blank=True)
    professionals = models.ManyToManyField(
        Professional, related_name="services", blank=True, verbose_name=_("professionals")
    )
    bookable_online = models.BooleanField(
        _("bookable online"),
        default=True,
        help_text=_("Customers may book it themselves over WhatsApp or through the assistant."),
    )
    reminder_hours = models.CharField(
        _("reminders (hours before)"),
        max_length=60,
        blank=True,
        help_text=_("Empty: the organization's rule."),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["category", "name"]
        verbose_name = _("service")
        verbose_name_plural = _("services")

    def __str__(self):
        return self.name


class WorkingHours(TenantModel):
    """One working period of a professional on a weekday (0 = Monday), local wall-clock time.
    Breaks are the gaps between a day's periods."""

    professional = models.ForeignKey(
        Professional, on_delete=models.CASCADE, related_name="working_hours"
    )
    weekday = models.PositiveSmallIntegerField(
        _("weekday"),
        choices=[
            (0, _("Monday")),
            (1, _("Tuesday")),
            (2, _("Wednesday")),
            (3, _("Thursday")),
            (4, _("Friday")),
            (5, _("Saturday")),
            (6, _("Sunday")),
        ],
    )
    starts_at = models.TimeField(_("from"))
    ends_at = models.TimeField(_("until"))

    class Meta:
        ordering = ["professional", "weekday", "starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at")),
                name="working_hours_start_before_end",
            ),
            models.CheckConstraint(
                condition=models.Q(weekday__lte=6), name="working_hours_weekday_range"
            ),
        ]
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")

    def __str__(self):
        return f"{self.professional} {self.weekday} {self.starts_at}-{self.ends_at}"


class AgendaException(TenantModel):
    """A change to the weekly hours: time off (holiday, vacation, a blocked hour) or one-off
    extra hours. Without a professional it applies to everyone (clinic closed)."""

    class Kind(models.TextChoices):
        OFF = "off", _("Time off / blocked")
        EXTRA = "extra", _("Extra hours")

    professional = models.ForeignKey(
        Professional,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="exceptions",
        help_text=_("Empty: the whole clinic."),
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.OFF)
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=120, blank=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["organization", "starts_at"], name="agenda_exc_start")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at")),
                name="agenda_exception_start_before_end",
            )
        ]
        verbose_name = _("agenda exception")
        verbose_name_plural = _("agenda exceptions")

    def __str__(self):
        return f"{self.get_kind_display()} {self.starts_at:%Y-%m-%d %H:%M}"


class Appointment(TenantModel):
    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")
        NO_SHOW = "no_show", _("No-show")
        COMPLETED = "completed", _("Completed")

    class Channel(models.TextChoices):
        BOT = "bot", _("WhatsApp menu")
        AI = "ai", _("AI assistant")
        STAFF = "staff", _("Team")
        API = "api", _("API")

    ACTIVE = (Status.BOOKED, Status.CONFIRMED)

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    professional = models.ForeignKey(
        Professional, on_delete=models.PROTECT, related_name="appointments"
    )
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="appointments")
    contact = models.ForeignKey(
        "inbox.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="appointments",
    )
    chat = models.ForeignKey(
        "inbox.Chat", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments"
    )
    customer_name = models.CharField(_("customer"), max_length=255, blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    # The span this appointment takes from the agenda, buffers included (exclusion constraint).
    blocked_from = models.DateTimeField(editable=False)
    blocked_until = models.DateTimeField(editable=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.BOOKED
    )
    channel = models.CharField(_("booked via"), max_length=8, choices=Channel.choices)
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reschedule_count = models.PositiveSmallIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [
            # Free-slot queries read only active appointments of a few professionals.
            models.Index(
                fields=["professional", "blocked_from"],
                name="appt_prof_active",
                condition=models.Q(status__in=["booked", "confirmed"]),
            ),
            models.Index(fields=["organization", "starts_at"], name="appt_org_start"),
            models.Index(fields=["contact", "starts_at"], name="appt_contact_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at")),
                name="appointment_start_before_end",
            )
        ]
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")

    def __str__(self):
        return f"{self.service} {self.starts_at:%Y-%m-%d %H:%M} ({self.professional})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def display_customer(self) -> str:
        if self.contact_id and self.contact:
            return self.contact.display_name
        return self.customer_name


class BookingSession(TenantModel):
    """Where a customer is in the WhatsApp booking menus (one per chat)."""

    class Step(models.TextChoices):
        SERVICE = "service", _("Choosing a service")
        DAY = "day", _("Choosing a day")
        TIME = "time", _("Choosing a time")
        CONFIRM = "confirm", _("Confirming")

    chat = models.OneToOneField("inbox.Chat", on_delete=models.CASCADE, related_name="+")
    step = models.CharField(max_length=10, choices=Step.choices, default=Step.SERVICE)
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.CASCADE)
    day = models.DateField(null=True, blank=True)
    professional = models.ForeignKey(Professional, null=True, blank=True, on_delete=models.CASCADE)
    starts_at = models.DateTimeField(null=True, blank=True)
    rescheduling = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    expires_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("booking session")
        verbose_name_plural = _("booking sessions")

    def __str__(self):
        return f"{self.chat_id} {self.step}"


class Reminder(TenantModel):
    """One reminder of one appointment, ``hours`` before it. The row is the queue: a send is
    claimed by a conditional UPDATE in the transaction that stores the outgoing message, so a
    worker killed before the commit leaves it pending and one killed after leaves it sent."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="reminders")
    hours = models.PositiveSmallIntegerField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    detail = models.CharField(max_length=255, blank=True)
    message = models.ForeignKey(
        "inbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at"]
        indexes = [models.Index(fields=["status", "due_at"], name="reminder_due")]
        constraints = [
            models.UniqueConstraint(fields=["appointment", "hours"], name="unique_reminder_hours")
        ]
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")

    def __str__(self):
        return f"{self.appointment_id} -{self.hours}h {self.status}"


class VisitNote(TenantModel):
    """A professional's voice note on an appointment, transcribed and structured (SOAP) by the
    organization's model. Without a model it stays ``needs_model`` and says so."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Transcribing")
        DONE = "done", _("Done")
        NEEDS_MODEL = "needs_model", _("Needs an AI model")
        FAILED = "failed", _("Failed")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="notes_by_voice"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    audio = models.FileField(upload_to="visit-notes/%Y/%m/")
    mime_type = models.CharField(max_length=100)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    transcript = models.TextField(blank=True)
    note = models.JSONField(
        default=dict, blank=True
    )  # {"subjective", "objective", "assessment", "plan"}
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("visit note")
        verbose_name_plural = _("visit notes")

    def __str__(self):
        return f"{self.appointment_id} {self.status}"


class WaitlistEntry(TenantModel):
    """A customer waiting for a time for ``service`` between two dates; offered the first slot
    that frees up (a cancellation), first come first served."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        BOOKED = "booked", _("Booked")
        EXPIRED = "expired", _("Expired")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    contact = models.ForeignKey("inbox.Contact", on_delete=models.CASCADE, related_name="+")
    chat = models.ForeignKey("inbox.Chat", on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="waitlist")
    wanted_from = models.DateField()
    wanted_until = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.WAITING)
    offers = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["service", "status"], name="waitlist_service_status")]
        verbose_name = _("waiting list entry")
        verbose_name_plural = _("waiting list")

    def __str__(self):
        return f"{self.contact_id} {self.service_id} {self.status}"
