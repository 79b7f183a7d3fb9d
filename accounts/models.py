import secrets
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in with an email address; may belong to several organizations."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField(_("email"), unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("Empty: use the organization's language."),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []
    objects = UserManager()

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@")[0]

    @property
    def initials(self) -> str:
        parts = self.display_name.replace(".", " ").split()
        return "".join(p[0] for p in parts[:2]).upper() or "?"


CURRENCIES = [
    ("BRL", "R$ (BRL)"),
    ("USD", "US$ (USD)"),
    ("EUR", "€ (EUR)"),
    ("MXN", "MX$ (MXN)"),
    ("ARS", "AR$ (ARS)"),
    ("CLP", "CLP$ (CLP)"),
    ("COP", "COL$ (COP)"),
    ("PEN", "S/ (PEN)"),
]


class Organization(models.Model):
    """A tenant: a clinic or small business. Every tenant-owned row points here."""

    class Plan(models.TextChoices):
        FREE = "free", _("Free")
        PRO = "pro", _("Pro")
        BUSINESS = "business", _("Business")

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="America/Sao_Paulo")
    language = models.CharField(
        _("language"), max_length=10, default="pt-br", choices=settings.LANGUAGES
    )
    plan = models.CharField(_("plan"), max_length=20, choices=Plan.choices, default=Plan.FREE)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, default="BRL")
    usd_rate = models.DecimalField(
        _("value of 1 US dollar"),
        max_digits=10,
        decimal_places=4,
        default=Decimal("5.50"),
        help_text=_(
            "In your currency. AI and WhatsApp prices are in US dollars; pages show them "
            "converted at this rate."
        ),
    )
    require_mfa = models.BooleanField(
        _("require two-factor authentication"),
        default=False,
        help_text=_("Members must set up an authenticator app before using the organization."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    MANAGER = "manager", _("Manager")
    OPERATOR = "operator", _("Operator")
    AGENT = "agent", _("Agent")


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.AGENT)
    max_open_chats = models.PositiveSmallIntegerField(
        _("most open chats at once"),
        default=0,
        help_text=_("Auto-assignment skips this person at this many open chats; 0: no limit."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")
        ]
        ordering = ["organization__name", "user__email"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self):
        return f"{self.user} @ {self.organization} ({self.role})"


def _invitation_token() -> str:
    return secrets.token_urlsafe(32)


def _invitation_expiry():
    return timezone.now() + timedelta(days=7)


class Invitation(models.Model):
    """An emailed link that makes its recipient a member with the given role; single use."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    token = models.CharField(max_length=64, unique=True, default=_invitation_token, editable=False)
    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.AGENT)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self):
        return f"{self.email} → {self.organization}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and not self.is_expired


class TenantQuerySet(models.QuerySet):
    def for_organization(self, organization):
        return self.filter(organization=organization)


def tenant_key(*, db_index: bool = True) -> models.ForeignKey:
    """The organization key of a tenant-owned model. ``db_index=False`` where the model's own
    composite indexes start with it: a second, single-column index would only cost every write
    and, with stale statistics, tempt PostgreSQL into reading a whole organization's rows."""
    return models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=db_index
    )


class TenantModel(models.Model):
    """Base for every tenant-owned model: an organization key and a scoped manager.

    Views never query these models unscoped: they go through ``access.py`` functions, which
    always filter by ``request.organization``.
    """

    organization = tenant_key()

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


# --- Integrator API ---------------------------------------------------------------------------

API_RESOURCES = (
    "numbers", "templates", "contacts", "chats", "messages", "media", "webhooks",
    "assistants", "campaigns", "segments", "reports", "privacy", "appointments", "flows",
)  # fmt: skip
API_KEY_PREFIX = "pfk_"


class ApiKey(TenantModel):
    """A secret for the integrator API, shown once: only its SHA-256 is stored, with a visible
    prefix so admins can tell keys apart. ``scopes`` lists ``"<resource>:read"`` /
    ``"<resource>:write"`` (write implies read)."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def allows(self, resource: str, action: str) -> bool:
        if action == "read":
            return f"{resource}:read" in self.scopes or f"{resource}:write" in self.scopes
        return f"{resource}:{action}" in self.scopes


class ApiIdempotencyKey(TenantModel):
    """One ``Idempotency-Key`` of a POST, stored with its response in the same transaction as
    the work, after it, so a retry replays the stored answer. ``completed`` is false only on
    rows of the older protocols (a claim made before the work)."""

    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    completed = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    locked_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="unique_idempotency_key")
        ]
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")

    def __str__(self):
        return self.key


class OpeningHours(TenantModel):
    """One opening period of the organization on a weekday (0 = Monday), in its time zone.
    A day may have several (a lunch break); a day with none is closed. Flows' "business
    hours", the booking agenda and handoff messages read them (``accounts.hours``)."""

    weekday = models.PositiveSmallIntegerField(_("weekday"))
    opens_at = models.TimeField(_("opens at"))
    closes_at = models.TimeField(_("closes at"))

    class Meta:
        ordering = ["weekday", "opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weekday__gte=0, weekday__lte=6), name="opening_weekday_range"
            ),
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("opens_at")), name="opening_closes_after"
            ),
        ]
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")

    def __str__(self):
        return f"{self.weekday} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"


class Holiday(TenantModel):
    """A day the organization is closed whatever its weekly hours say."""

    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=120, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "date"], name="unique_holiday_date")
        ]
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")

    def __str__(self):
        return f"{self.date} {self.name}".strip()


class Team(TenantModel):
    """A group of members who share chats (reception, billing…). With ``auto_assign``, new chats
    nobody answers yet are dealt round robin among its members online in the inbox, each up to
    their ``Membership.max_open_chats``."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(_("name"), max_length=80)
    members = models.ManyToManyField(
        User, blank=True, related_name="teams", verbose_name=_("members")
    )
    auto_assign = models.BooleanField(
        _("assign new chats automatically"),
        default=False,
        help_text=_("Round robin among the team's members online in the inbox."),
    )
    # The round robin's cursor: moved with a conditional UPDATE (see inbox.assignment).
    last_assignee = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_team_name")
        ]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self):
        return self.name
