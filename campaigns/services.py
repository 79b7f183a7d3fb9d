"""Changes to audiences and campaigns: consent (opt-out/opt-in), segments, contacts import,
campaign lifecycle (create, launch, pause, resume, cancel), audience expansion and progress.

The send loop itself lives in ``campaigns.dispatch``.
"""

import csv
import functools
import io
import logging
import re
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import phonenumbers
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, DateTimeField, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from assistants.models import Assistant
from assistants.services import campaign_texts_write
from campaigns import scheduling
from campaigns.models import (
    AudienceSettings,
    AutomationRun,
    Campaign,
    CampaignRecipient,
    ConsentEvent,
    DripDelivery,
    DripEnrolment,
    Segment,
)
from inbox import contacts as inbox_contacts
from inbox import services as inbox_services
from inbox import signals as inbox_signals
from inbox.consumers import organization_group
from inbox.models import Chat, Contact, Message
from integrations.ai import AIError
from integrations.providers import capabilities_for
from kernel import realtime, tasks
from kernel.memo import ProcessMemo

logger = logging.getLogger(__name__)

CONTACT_FIELDS = ("name", "first_name", "profile_name", "phone", "email", "language")
R = CampaignRecipient.Status
PENDING_STATUSES = (R.QUEUED, R.SENDING, R.UNKNOWN)
REPLY_ATTRIBUTION = timedelta(days=7)


# --- Consent (LGPD) ---------------------------------------------------------------------------


def audience_settings_for(organization) -> AudienceSettings:
    found = AudienceSettings.objects.filter(organization=organization).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return AudienceSettings.objects.create(organization=organization)
    except IntegrityError:
        return AudienceSettings.objects.get(organization=organization)


def normalize_keyword(text: str) -> str:
    """Case- and accent-insensitive, ignoring surrounding spaces and punctuation."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"^[\W_]+|[\W_]+$", "", plain.casefold().strip())


@functools.lru_cache(maxsize=1024)
def keyword_set(value: str) -> frozenset[str]:
    """The words of a comma-separated list, normalized (memoized: asked for every inbound
    message, with the same few lists)."""
    return frozenset(normalize_keyword(w) for w in value.split(",") if normalize_keyword(w))


@transaction.atomic
def contact_set_consent(
    *, contact: Contact, opted_in: bool, source: str, detail: str = "", actor=None
) -> bool:
    """Record an opt-in or opt-out; returns False when the contact was already in that state.

    An opt-out also skips the contact's queued campaign sends at once (the dispatcher checks
    again before every batch).
    """
    state = Contact.OptIn.OPTED_IN if opted_in else Contact.OptIn.OPTED_OUT
    now = timezone.now()
    changed = (
        Contact.objects.filter(pk=contact.pk)
        .exclude(opt_in=state)
        .update(opt_in=state, opt_in_at=now, opt_in_source=source)
    )
    if not changed:
        return False
    contact.opt_in, contact.opt_in_at, contact.opt_in_source = state, now, source
    ConsentEvent.objects.create(
        organization_id=contact.organization_id,
        contact=contact,
        opted_in=opted_in,
        source=source,
        detail=detail[:255],
        actor=actor,
    )
    if not opted_in:
        CampaignRecipient.objects.filter(contact=contact, status=R.QUEUED).update(
            status=R.SKIPPED, reason=CampaignRecipient.Reason.OPTED_OUT
        )
    inbox_signals.contact_changed_on_commit(
        contact=contact, change="opted_in" if opted_in else "opted_out", data={"source": source}
    )
    return True


def contact_data_erase(*, contact: Contact, token: str) -> None:
    """What campaigns hold about a contact being erased (LGPD), inside the erasure's
    transaction: consent details, the numbers and texts their campaign messages went with,
    list memberships, automation and drip records. Counts and statuses stay for reports."""
    ConsentEvent.objects.filter(contact=contact).update(detail="")
    CampaignRecipient.objects.filter(contact=contact).update(
        to=token[:32], components=[], error_detail=""
    )
    contact.segments.clear()
    AutomationRun.objects.filter(contact=contact).update(detail="", actions=[])
    DripEnrolment.objects.filter(contact=contact).update(last_error="")
    DripDelivery.objects.filter(enrolment__contact=contact).update(feedback="")


_audience_settings = ProcessMemo()


def _audience_settings_of(organization_id: int) -> AudienceSettings:
    """Every inbound message asks and almost none is a keyword; see ``kernel.memo``."""
    return _audience_settings.get(
        organization_id,
        lambda: (
            AudienceSettings.objects.filter(organization_id=organization_id).first()
            or AudienceSettings(organization_id=organization_id)
        ),
    )


def audience_settings_changed(organization_id: int) -> None:
    _audience_settings.forget(organization_id)


def consent_keyword(message: Message) -> bool | None:
    """Is the customer's whole message an opt-out word (False: STOP, PARAR...) or an opt-in word
    (True: START, VOLTAR...)? None otherwise. No query for most messages (memoized words).

    A tap on one of our own reply buttons or list rows (a flow's or a booking's "Cancelar") is
    an answer to that menu, never consent; typed words and a template's quick-reply button
    ("Parar promoções") are."""
    if message.direction != Message.Direction.INBOUND or not message.text:
        return None
    if message.type == Message.Type.INTERACTIVE:
        return None
    prefs = _audience_settings_of(message.organization_id)
    word = normalize_keyword(message.text)
    if word in keyword_set(prefs.opt_out_keywords):
        return False
    if word in keyword_set(prefs.opt_in_keywords):
        return True
    return None


def inbound_consent_apply(*, message: Message) -> str | None:
    """STOP/PARAR/... (whole message) opts out; START/VOLTAR re-subscribes. Confirms once.

    The router's consent handler (it owns such messages). Returns "opted_out", "opted_in" or
    None.
    """
    opted_in = consent_keyword(message)
    if opted_in is None:
        return None
    prefs = _audience_settings_of(message.organization_id)
    chat = Chat.objects.select_related("contact", "organization", "number").get(pk=message.chat_id)
    changed = contact_set_consent(
        contact=chat.contact,
        opted_in=opted_in,
        source=ConsentEvent.Source.CONVERSATION,
        detail=message.text[:100],
    )
    if not changed:
        return None
    with translation.override(chat.organization.language):
        if opted_in:
            body = prefs.opt_in_reply or _(
                "You are subscribed again. Reply STOP at any time to stop receiving our messages."
            )
        else:
            body = prefs.opt_out_reply or _(
                "Done: you will not receive our campaign messages anymore. "
                "Reply START to subscribe again."
            )
    try:
        inbox_services.message_send(
            chat=chat,
            message_type="text",
            content={"body": body, "preview_url": False},
            author_type=Message.Author.AUTOMATION,
            author_ref="opt-in" if opted_in else "opt-out",
        )
    except inbox_services.SendRefused:
        logger.warning("Consent confirmation for chat %s refused", chat.pk)
    return "opted_in" if opted_in else "opted_out"


def reply_attribute(*, message: Message) -> CampaignRecipient | None:
    """A customer's message after a campaign send marks the recipient replied and moves the
    contact forward (lead/contacted → replied); it may also be a campaign's conversion.

    It runs for every inbound message, so one query finds the contact's recent campaign
    messages for both purposes (almost always none)."""
    if message.direction != Message.Direction.INBOUND:
        return None
    chat = message.chat  # came with the message when just received
    contact_id = chat.contact_id
    recent = _recent_recipients(contact_id)
    replied = (R.SENT, R.DELIVERED, R.READ)
    recipient = next(
        (r for r in recent if r.status in replied and r.campaign.number_id == message.number_id),
        None,
    )
    stage = chat.contact.stage if Chat.contact.is_cached(chat) else None
    if stage in (None, Contact.Stage.LEAD, Contact.Stage.CONTACTED):
        Contact.objects.filter(
            pk=contact_id, stage__in=(Contact.Stage.LEAD, Contact.Stage.CONTACTED)
        ).update(stage=Contact.Stage.REPLIED)
    if recipient is not None:
        moved = CampaignRecipient.objects.filter(pk=recipient.pk, status__in=replied).update(
            status=R.REPLIED, replied_at=message.timestamp, reply=message
        )
        if moved:
            progress_publish(recipient.campaign_id)
    # STOP or START is an answer about consent (the router's consent handler owns it), never a
    # conversion; any other later message counts (the first reply may have been a question).
    if recent and message.handled_by != "consent":
        conversion_apply(contact_id=contact_id, kind="reply", recent=recent)
    return recipient


def _recent_recipients(contact_id: int) -> list[CampaignRecipient]:
    """The contact's campaign messages within the attribution window, newest first."""
    since = timezone.now() - REPLY_ATTRIBUTION
    return list(
        CampaignRecipient.objects.filter(
            contact_id=contact_id,
            sent_at__gte=since,
            status__in=(R.SENT, R.DELIVERED, R.READ, R.REPLIED),
        )
        .select_related("campaign")
        .order_by("-sent_at")[:10]
    )


# --- Lifecycle and conversions ----------------------------------------------------------------

CONVERSION_KINDS = ("reply", "tag", "intent")


def campaign_conversion(campaign: Campaign) -> dict:
    """What counts as this campaign's conversion: ``{"kind": "reply"|"tag"|"intent"|"none",
    "value"}``, kept in ``Campaign.variables["conversion"]`` (none when never chosen)."""
    chosen = (campaign.variables or {}).get("conversion") or {}
    kind = chosen.get("kind") if chosen.get("kind") in CONVERSION_KINDS else "none"
    return {"kind": kind, "value": str(chosen.get("value") or "")}


def _counts_as_conversion(campaign: Campaign, kind: str, value: str) -> bool:
    chosen = campaign_conversion(campaign)
    if chosen["kind"] != kind:
        return False
    if kind == "reply":
        return True
    wanted, given = normalize_keyword(chosen["value"]), normalize_keyword(value)
    if not wanted or not given:
        return False
    return wanted == given if kind == "tag" else wanted in given


def contact_convert(*, contact_id: int, source: str) -> bool:
    """The contact becomes a customer (once: an earlier conversion or a customer set by hand
    stays as it was, so nothing moves backwards)."""
    return bool(
        Contact.objects.filter(pk=contact_id, converted_at__isnull=True)
        .exclude(stage=Contact.Stage.CUSTOMER)
        .update(stage=Contact.Stage.CUSTOMER, converted_at=timezone.now(), conversion_source=source)
    )


def conversion_source(campaign: Campaign) -> str:
    return f"campaign:{campaign.code}"


def conversion_apply(
    *, contact_id: int, kind: str, value: str = "", recent: list | None = None
) -> CampaignRecipient | None:
    """A reply, an added tag or an analysis intent converts the contact when a campaign that
    reached them within the attribution window counts it as its conversion (the latest such
    campaign gets the credit). ``recent``: the contact's ``_recent_recipients``, if known."""
    if recent is None:
        recent = _recent_recipients(contact_id)
    for recipient in recent:
        if _counts_as_conversion(recipient.campaign, kind, value):
            if contact_convert(contact_id=contact_id, source=conversion_source(recipient.campaign)):
                progress_publish(recipient.campaign_id)
                return recipient
            return None
    return None


def campaign_converted(campaign: Campaign) -> int:
    """Recipients of this campaign whose conversion it caused."""
    return (
        CampaignRecipient.objects.filter(
            campaign_id=campaign.pk, contact__conversion_source=conversion_source(campaign)
        )
        .values("contact_id")
        .distinct()
        .count()
    )


STATUS_ORDER = {R.SENT: 1, R.DELIVERED: 2, R.READ: 3, R.REPLIED: 4}


def recipients_status_apply(*, changes: list[tuple[Message, str]]) -> None:
    """Follow campaign messages' delivery statuses (forward only), for a batch of (message,
    status) changes at once (a webhook batch moves dozens): one UPDATE per status rather than
    per message, and one progress update per campaign touched."""
    followed = [
        (message, status)
        for message, status in changes
        if message.author_type == Message.Author.CAMPAIGN
        and message.wamid
        and status in (R.DELIVERED, R.READ, R.FAILED)
    ]
    if not followed:
        return
    now = timezone.now()
    updated = 0
    with transaction.atomic():
        # Delivered before read: a message may have moved twice in the batch.
        for status, stamp in ((R.DELIVERED, "delivered_at"), (R.READ, "read_at")):
            when = {m.wamid: getattr(m, stamp) or now for m, s in followed if s == status}
            if not when:
                continue
            earlier = [s for s, rank in STATUS_ORDER.items() if rank < STATUS_ORDER[status]]
            updated += CampaignRecipient.objects.filter(wamid__in=when, status__in=earlier).update(
                status=status, **{stamp: _by_wamid(when)}
            )
            if status == R.READ:  # read implies delivered
                CampaignRecipient.objects.filter(wamid__in=when, delivered_at__isnull=True).update(
                    delivered_at=_by_wamid(when)
                )
        for message, status in followed:
            if status == R.FAILED:
                updated += CampaignRecipient.objects.filter(
                    wamid=message.wamid, status__in=(R.SENT, R.DELIVERED)
                ).update(
                    status=R.FAILED,
                    reason=CampaignRecipient.Reason.DELIVERY_FAILED,
                    failed_at=now,
                    error_code=message.error_code,
                    error_detail=(message.error_title or message.error_details)[:500],
                )
    if updated:
        wamids = {message.wamid for message, _status in followed}
        campaign_ids = (
            CampaignRecipient.objects.filter(wamid__in=wamids)
            .values_list("campaign_id", flat=True)
            .distinct()
        )
        for campaign_id in sorted(campaign_ids):
            progress_publish(campaign_id)


def _by_wamid(values: dict):
    """An UPDATE value per recipient's wamid (a plain value when they are all the same)."""
    distinct = set(values.values())
    if len(distinct) == 1:
        return distinct.pop()
    return Case(
        *[When(wamid=wamid, then=Value(value)) for wamid, value in values.items()],
        output_field=DateTimeField(),
    )


# --- Contacts ---------------------------------------------------------------------------------


def default_region(organization) -> str:
    language = (organization.language or "").lower()
    if language.startswith("pt"):
        return "BR"
    if language.startswith("es"):
        return "ES"
    return "US"


def phone_normalize(raw: str, region: str) -> str | None:
    """E.164 for a valid phone number (national numbers read in ``region``), else None."""
    raw = (raw or "").strip()
    if not raw:
        return None
    candidates = [raw]
    if not raw.startswith("+") and raw.isdigit() and len(raw) > 10:
        # Spreadsheets drop the "+" of numbers typed as numbers: 5511988887777.
        candidates.append("+" + raw)
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, None if candidate.startswith("+") else region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


clean_tags = inbox_contacts.clean_tags


STAFF_FIELDS = ("name", "email", "language", "time_zone", "notes", "stage", "tags", "attributes")


@transaction.atomic
def contact_update(*, contact: Contact, actor, data: dict, source: str = "staff") -> Contact:
    """Staff edits: name, email, tags, stage, language, time zone, notes, attributes, consent.

    The write is ``inbox.contacts.contact_update``'s; a tag added here may be a campaign's
    conversion. Consent changes only through ``contact_set_consent`` (so they are recorded).
    """
    tags_before = list(
        Contact.objects.filter(pk=contact.pk).values_list("tags", flat=True).get() or []
    )
    inbox_contacts.contact_update(
        contact=contact, data={k: v for k, v in data.items() if k in STAFF_FIELDS}, source=source
    )
    for tag in contact.tags:
        if tag not in tags_before:
            conversion_apply(contact_id=contact.pk, kind="tag", value=tag)
    if data.get("opt_in") in (Contact.OptIn.OPTED_IN, Contact.OptIn.OPTED_OUT):
        contact_set_consent(
            contact=contact,
            opted_in=data["opt_in"] == Contact.OptIn.OPTED_IN,
            source=ConsentEvent.Source.STAFF,
            actor=actor,
        )
    return contact


@transaction.atomic
def contacts_tag(*, organization, codes: list, add: list[str], remove: list[str]) -> int:
    count = 0
    add, remove = clean_tags(add), set(clean_tags(remove))
    for contact in Contact.objects.select_for_update().filter(
        organization=organization, code__in=codes
    ):
        tags = [t for t in contact.tags if t not in remove]
        tags = clean_tags([*tags, *add])
        added = [t for t in tags if t not in contact.tags]
        if tags != contact.tags:
            inbox_contacts.contact_update(contact=contact, data={"tags": tags}, source="staff")
        for tag in added:
            conversion_apply(contact_id=contact.pk, kind="tag", value=tag)
        count += 1
    return count


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    merged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


IMPORT_TARGETS = ("phone", "name", "email", "tags", "language", "time_zone", "opt_in", "stage")


MAX_IMPORT_ROWS = 50_000
# An XLSX is a zip: a small upload may inflate to gigabytes (a "zip bomb"); refuse before parsing.
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024


class ImportFileError(ValueError):
    """The uploaded file cannot be imported (its message says why, for the form)."""


def import_file_read(data: bytes) -> tuple[list[str], list[list[str]]]:
    """Header and rows (text cells) of an uploaded CSV or XLSX file, told apart by content.
    Raises ``ImportFileError`` for other files, unreadable workbooks and too many rows."""
    if data.startswith(b"PK\x03\x04"):
        header, rows = xlsx_read(data)
    elif data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(_("This is an old Excel file (.xls): save it as .xlsx or CSV."))
    elif b"\x00" in data[:4096]:
        raise ImportFileError(_("This is not a CSV or Excel (.xlsx) file."))
    else:
        header, rows = csv_read(data)
    if len(rows) > MAX_IMPORT_ROWS:
        raise ImportFileError(
            _("The file has more than %(max)s rows; split it into smaller files.")
            % {"max": f"{MAX_IMPORT_ROWS:,}"}
        )
    return header, rows


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phones typed as numbers: 5511988887777.0
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def xlsx_read(data: bytes) -> tuple[list[str], list[list[str]]]:
    """The first sheet of a workbook as ``csv_read`` returns a CSV: row 1 is the header."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    unreadable = _("The file could not be read as an Excel (.xlsx) workbook.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            inflated = sum(item.file_size for item in archive.infolist())
    except zipfile.BadZipFile as error:
        raise ImportFileError(unreadable) from error
    if "xl/workbook.xml" not in names:
        raise ImportFileError(unreadable)
    if inflated > MAX_XLSX_UNCOMPRESSED:
        raise ImportFileError(_("The workbook is too large once unpacked; export it as CSV."))
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise ImportFileError(unreadable) from error
    rows: list[list[str]] = []
    try:
        if not workbook.worksheets:
            return [], []
        for values in workbook.worksheets[0].iter_rows(values_only=True):
            if len(rows) > MAX_IMPORT_ROWS + 1:
                break  # import_file_read reports it
            rows.append([_cell_text(value).strip() for value in values])
    except (KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ImportFileError(unreadable) from error
    finally:
        workbook.close()
    while rows and not any(rows[-1]):
        rows.pop()
    if not rows:
        return [], []
    header = rows[0]
    while header and not header[-1]:
        header.pop()
    return header, rows[1:]


def csv_read(data: bytes) -> tuple[list[str], list[list[str]]]:
    text = data.decode("utf-8-sig", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        return [], []
    return [h.strip() for h in rows[0]], rows[1:]


IMPORT_YES = ("1", "yes", "y", "sim", "s", "sí", "si", "true", "opted_in", "x")
IMPORT_NO = ("0", "no", "n", "não", "nao", "false", "opted_out")


def import_row_values(row: list[str], columns: dict[int, str], region: str) -> tuple[str, dict]:
    """``(phone, values)`` of one import row (``columns``: index → target); raises
    ``ValueError`` with the reason for a bad row. Shared by the page's background import
    (``campaigns.imports``) and the API's."""
    values: dict = {"attributes": {}, "tags": []}
    for index, cell in enumerate(row):
        target, cell = columns.get(index, ""), cell.strip()
        if not target or not cell:
            continue
        if target.startswith("attribute:"):
            values["attributes"][target.split(":", 1)[1]] = cell
        elif target == "tags":
            values["tags"] += [t for t in re.split(r"[,;|]", cell) if t.strip()]
        else:
            values[target] = cell
    phone = phone_normalize(values.get("phone", ""), region)
    if phone is None:
        raise ValueError(
            _("“%(phone)s” is not a valid phone number.") % {"phone": values.get("phone", "")}
        )
    if values.get("email") and "@" not in values["email"]:
        raise ValueError(_("“%(email)s” is not an email address.") % values)
    if values.get("stage") and values["stage"] not in Contact.Stage.values:
        raise ValueError(_("Unknown stage “%(stage)s”.") % values)
    opt = (values.get("opt_in") or "").strip().lower()
    if opt in IMPORT_YES:
        values["opt_in"] = True
    elif opt in IMPORT_NO:
        values["opt_in"] = False
    elif opt:
        raise ValueError(_("Opt-in must be yes or no, not “%(value)s”.") % {"value": opt})
    return phone, values


def contacts_import(
    *, organization, actor, header: list[str], rows: list[list[str]], mapping: dict[str, str]
) -> ImportReport:
    """Import rows with ``mapping`` (CSV column → target: a contact field or
    ``attribute:<key>``). All or nothing: any bad row → nothing is written and every error is
    reported with its row number. Rows with the same phone (in the file or already stored) are
    merged into one contact; opt-ins are recorded with source "import"."""
    region = default_region(organization)
    report = ImportReport()
    merged: dict[str, dict] = {}
    columns = {i: mapping.get(name, "") for i, name in enumerate(header)}
    if "phone" not in columns.values():
        report.errors.append((0, _("Map one column to the phone number.")))
        return report
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            phone, values = import_row_values(row, columns, region)
        except ValueError as error:
            report.errors.append((line, str(error)))
            continue
        if phone in merged:
            report.merged += 1
            previous = merged[phone]
            previous["tags"] += values.pop("tags")
            previous["attributes"].update(values.pop("attributes"))
            previous.update(values)
        else:
            merged[phone] = values
    if report.errors:
        return report
    with transaction.atomic():
        # The contacts in bulk (``inbox.contacts``: one "created" event for all new ones, so
        # their automations and webhooks are queued in blocks); consent row by row, recorded.
        upserted = inbox_contacts.contacts_upsert(
            organization_id=organization.pk, rows=merged, source="import"
        )
        report.created, report.updated = len(upserted.created), len(upserted.updated)
        for contact in [*upserted.created, *upserted.updated]:
            values = merged.get(contact.phone) or merged.get(f"+{contact.wa_id}") or {}
            if "opt_in" in values:
                contact_set_consent(
                    contact=contact,
                    opted_in=values["opt_in"],
                    source=ConsentEvent.Source.IMPORT,
                    actor=actor,
                )
    return report


def contacts_export(contacts) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "phone",
            "name",
            "email",
            "tags",
            "stage",
            "opt_in",
            "opt_in_source",
            "language",
            "time_zone",
            "last_inbound_at",
            "attributes",
            "lead_score",
            "customer_since",
        ]
    )
    for c in contacts.iterator(chunk_size=2000):
        writer.writerow(
            [
                c.phone,
                c.name or c.profile_name,
                c.email,
                ", ".join(c.tags),
                c.stage,
                c.opt_in,
                c.opt_in_source,
                c.language,
                c.time_zone,
                c.last_inbound_at.isoformat() if c.last_inbound_at else "",
                "; ".join(f"{k}={v}" for k, v in (c.attributes or {}).items()),
                "" if c.lead_score is None else c.lead_score,
                c.converted_at.isoformat() if c.converted_at else "",
            ]
        )
    return out.getvalue()


# --- Segments ---------------------------------------------------------------------------------


def segment_save(
    *, organization, segment: Segment | None, name: str, kind: str, filters: dict
) -> Segment:
    segment = segment or Segment(organization=organization)
    segment.name, segment.kind, segment.filters = name, kind, filters
    segment.save()
    return segment


def segment_add_contacts(*, segment: Segment, codes: list) -> int:
    contacts = list(Contact.objects.filter(organization_id=segment.organization_id, code__in=codes))
    segment.contacts.add(*contacts)
    return len(contacts)


# --- Template variables -----------------------------------------------------------------------

PLACEHOLDER = re.compile(r"{{\s*([\w]+)\s*}}")


def template_slots(template) -> dict:
    """The variables of a template: header format and placeholders of header and body."""
    slots = {"header_format": "", "header": [], "body": []}
    for component in template.components or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            slots["header_format"] = str(component.get("format", "TEXT")).upper()
            if slots["header_format"] == "TEXT":
                slots["header"] = PLACEHOLDER.findall(component.get("text", ""))
        elif kind == "BODY":
            slots["body"] = PLACEHOLDER.findall(component.get("text", ""))
    return slots


# A named placeholder's contact field, by the words people use for it.
NAMED_FIELDS = {
    "name": "name",
    "nome": "name",
    "nombre": "name",
    "full_name": "name",
    "nome_completo": "name",
    "first_name": "first_name",
    "primeiro_nome": "first_name",
    "primer_nombre": "first_name",
    "cliente": "first_name",
    "paciente": "first_name",
    "customer": "first_name",
    "phone": "phone",
    "telefone": "phone",
    "telefono": "phone",
    "celular": "phone",
    "email": "email",
    "e_mail": "email",
}


def template_examples(template) -> dict[str, list[str]]:
    """The sample values Meta keeps with a template, by part, in placeholder order."""
    examples: dict[str, list[str]] = {"header": [], "body": []}
    for component in (template.components if template else None) or []:
        kind = str(component.get("type", "")).lower()
        example = component.get("example") or {}
        if kind == "header":
            examples["header"] = [str(v) for v in example.get("header_text") or []]
            named = example.get("header_text_named_params") or []
        elif kind == "body":
            rows = example.get("body_text") or [[]]
            examples["body"] = [str(v) for v in (rows[0] if rows else [])]
            named = example.get("body_text_named_params") or []
        else:
            continue
        if named:
            examples[kind] = [str(p.get("example", "")) for p in named]
    return examples


def default_mapping(*, slot: str, position: int, example: str = "", attributes=()) -> dict:
    """A first guess for one placeholder, so a new campaign never repeats the contact's name:
    a named placeholder that names a contact field or attribute takes it; the first numbered
    placeholder is the first name (the usual "Olá {{1}}"); any other is fixed text, prefilled
    with the template's sample value for staff to check."""
    key = slot.lower()
    if key in NAMED_FIELDS:
        return {"source": "field", "value": NAMED_FIELDS[key], "fallback": ""}
    if key in {a.lower() for a in attributes}:
        name = next(a for a in attributes if a.lower() == key)
        return {"source": "field", "value": f"attribute:{name}", "fallback": ""}
    if slot.isdigit() and position == 0 and not example[:1].isdigit():
        return {"source": "field", "value": "first_name", "fallback": ""}
    return {"source": "fixed", "value": example, "fallback": ""}


def default_variables(template, attributes=()) -> dict:
    """Mappings for every placeholder of ``template`` (see ``default_mapping``)."""
    slots = template_slots(template)
    examples = template_examples(template)
    variables: dict = {}
    for part in ("header", "body"):
        mappings = []
        for position, slot in enumerate(slots[part]):
            sample = examples[part][position] if position < len(examples[part]) else ""
            mappings.append(
                default_mapping(slot=slot, position=position, example=sample, attributes=attributes)
            )
        if mappings:
            variables[part] = mappings
    return variables


def template_text(template) -> str:
    for component in template.components or []:
        if str(component.get("type", "")).upper() == "BODY":
            return component.get("text", "")
    return ""


def contact_value(values: dict, source: str) -> str:
    if source.startswith("attribute:"):
        return str((values.get("attributes") or {}).get(source.split(":", 1)[1], "") or "")
    name = values.get("name") or values.get("profile_name") or ""
    if source == "name":
        return name
    if source == "first_name":
        return name.split()[0] if name.split() else ""
    return str(values.get(source) or "")


class MissingVariable(ValueError):
    """No text for a template variable; ``key`` is its "part:position"."""

    def __init__(self, slot: str, key: str = ""):
        super().__init__(slot)
        self.key = key


def render_components(
    *,
    slots: dict,
    variables: dict,
    values: dict,
    media_link: str,
    written: dict | None = None,
) -> list[dict]:
    """The template components for one contact (``values``: the contact's fields; ``written``:
    the assistant-written texts by "part:position")."""
    named = any(not s.isdigit() for s in slots["body"] + slots["header"])
    components = []
    for part in ("header", "body"):
        parameters = []
        for position, slot in enumerate(slots[part]):
            mapping = variables.get(part) or [{}] * len(slots[part])
            mapping = mapping[position] if position < len(mapping) else {}
            if mapping.get("source") == "fixed":
                text = mapping.get("value", "")
            elif mapping.get("source") == "assistant":
                text = (written or {}).get(slot_key(part, position), "")
            else:
                text = contact_value(values, mapping.get("value") or "name")
            text = (text or mapping.get("fallback") or "").strip()
            if not text:
                raise MissingVariable(slot, slot_key(part, position))
            parameter = {"type": "text", "text": text}
            if named:
                parameter["parameter_name"] = slot
            parameters.append(parameter)
        if part == "header" and slots["header_format"] in ("IMAGE", "VIDEO", "DOCUMENT"):
            kind = slots["header_format"].lower()
            parameters = [{"type": kind, kind: {"link": media_link}}]
        if parameters:
            components.append({"type": part, "parameters": parameters})
    return components


def preview_text(template, components: list[dict]) -> str:
    text = template_text(template)
    for component in components:
        if component["type"] != "body":
            continue
        for position, parameter in enumerate(component["parameters"], start=1):
            key = parameter.get("parameter_name") or str(position)
            pattern = r"{{\s*" + re.escape(key) + r"\s*}}"
            text = re.sub(pattern, lambda _match, value=parameter["text"]: value, text)
    return text


def contact_values(contact: Contact) -> dict:
    return {
        "code": contact.code,
        "name": contact.name,
        "profile_name": contact.profile_name,
        "phone": contact.phone,
        "email": contact.email,
        "language": contact.language,
        "attributes": contact.attributes,
        "tags": contact.tags,
        "stage": contact.stage,
    }


def campaign_preview(*, campaign: Campaign, contacts) -> list[dict]:
    slots = template_slots(campaign.template)
    samples = ai_samples(campaign)
    placeholder = "⟨" + _("written by the assistant") + "⟩"
    pending = {slot_key(part, pos): placeholder for part, pos, _m in ai_slots(campaign.variables)}
    previews = []
    for contact in contacts:
        written = {**pending, **samples.get(str(contact.code), {}).get("texts", {})}
        try:
            components = render_components(
                slots=slots,
                variables=campaign.variables,
                values=contact_values(contact),
                media_link=campaign.header_media_link,
                written=written,
            )
            previews.append(
                {"contact": contact, "text": preview_text(campaign.template, components)}
            )
        except MissingVariable as missing:
            previews.append({"contact": contact, "error": _("No value for {{%s}}") % missing})
    return previews


# --- Assistant-written variables ----------------------------------------------------------------

# Longest text an assistant may put in one template variable (WhatsApp allows 60 characters in a
# header and 1,024 in the whole body; one variable stays well under that).
AI_TEXT_LIMITS = {"header": 60, "body": 200}
AI_SAMPLE_SIZE = 5


def slot_key(part: str, position: int) -> str:
    return f"{part}:{position}"


def ai_slots(variables: dict) -> list[tuple[str, int, dict]]:
    """The template variables an assistant writes: (part, position, mapping)."""
    return [
        (part, position, mapping)
        for part in ("header", "body")
        for position, mapping in enumerate((variables or {}).get(part) or [])
        if mapping.get("source") == "assistant"
    ]


def ai_samples(campaign: Campaign) -> dict:
    """Previewed texts by contact code: ``{"texts": {key: text}, "errors": {...},
    "edited": [key, ...]}``; sending uses them as they are (edits included)."""
    return ((campaign.variables or {}).get("ai") or {}).get("samples") or {}


def fit_text(text: str, limit: int) -> str | None:
    """``text`` on one line within ``limit`` characters: cut after its last whole sentence that
    fits, or None when not even the first sentence fits (a sentence cut in half is never sent)."""
    text = re.sub(r"\s+", " ", text or "").strip()
    if len(text) <= limit:
        return text
    ends = [m.end() for m in re.finditer(r"[.!?…](?=\s|$)", text[: limit + 1])]
    return text[: ends[-1]].strip() if ends else None


def contact_facts(values: dict) -> dict:
    """What an assistant may know of a contact to write for them (no phone, no email)."""
    name = values.get("name") or values.get("profile_name") or ""
    return {
        "name": name,
        "first_name": name.split()[0] if name.split() else "",
        "language": values.get("language") or "",
        "tags": values.get("tags") or [],
        "attributes": values.get("attributes") or {},
        "stage": values.get("stage") or "",
    }


def texts_write(*, campaign: Campaign, contacts: list[dict]) -> list[dict]:
    """Ask the chosen assistants for every assistant-written variable of each contact (``values``
    dicts). Returns, per contact, ``{"texts": {key: text}, "errors": {key: reason}}``; texts are
    length-checked (``fit_text``)."""
    results = [{"texts": {}, "errors": {}} for _contact in contacts]
    if not contacts:
        return results
    facts = [contact_facts(values) for values in contacts]
    for part, position, mapping in ai_slots(campaign.variables):
        key, limit = slot_key(part, position), AI_TEXT_LIMITS[part]
        assistant = Assistant.objects.filter(
            organization_id=campaign.organization_id, code=_uuid_or_none(mapping.get("assistant"))
        ).first()
        try:
            if assistant is None:
                raise AIError(_("The assistant chosen for this variable no longer exists."))
            written = campaign_texts_write(
                assistant=assistant,
                instruction=mapping.get("value", ""),
                facts=facts,
                max_chars=limit,
            )
        except AIError as error:
            for result in results:
                result["errors"][key] = str(error)[:300]
            continue
        for result, one in zip(results, written, strict=True):
            fitted = fit_text(one.text, limit) if one.text else None
            if fitted:
                result["texts"][key] = fitted
            elif one.error:
                result["errors"][key] = one.error
            else:
                result["errors"][key] = _(
                    "The assistant's text is too long (%(n)s characters; at most %(max)s)."
                ) % {"n": len(one.text), "max": limit}
    return results


def recipient_texts(*, campaign: Campaign, contacts: list[dict]) -> list[dict]:
    """``texts_write`` for sending: a contact previewed on the campaign page keeps the texts
    staff saw (and perhaps edited); only the others are written now."""
    keys = [slot_key(part, position) for part, position, _m in ai_slots(campaign.variables)]
    samples = ai_samples(campaign)
    results: list[dict | None] = []
    todo = []
    for values in contacts:
        sample = samples.get(str(values.get("code")))
        if sample and all(sample.get("texts", {}).get(key) for key in keys):
            results.append({"texts": dict(sample["texts"]), "errors": {}})
        else:
            results.append(None)
            todo.append(values)
    fresh = iter(texts_write(campaign=campaign, contacts=todo))
    return [result if result is not None else next(fresh) for result in results]


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def ai_sample_contacts(campaign: Campaign) -> list[Contact]:
    from campaigns import selectors

    return list(selectors.audience_contacts(campaign).order_by("pk")[:AI_SAMPLE_SIZE])


def _ai_state_save(campaign_id: int, change) -> Campaign:
    """Apply ``change(ai_dict)`` to the campaign's AI state under a row lock."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign_id)
        variables = dict(locked.variables or {})
        ai = dict(variables.get("ai") or {})
        ai["samples"] = dict(ai.get("samples") or {})
        change(ai)
        variables["ai"] = ai
        Campaign.objects.filter(pk=campaign_id).update(variables=variables)
        locked.variables = variables
    return locked


def ai_samples_request(*, campaign: Campaign, contact_code: str = "") -> bool:
    """Write the preview texts (all, or one contact's) in the background; False when the
    campaign has no assistant-written variable."""
    if not ai_slots(campaign.variables):
        return False

    def mark(ai):
        ai["state"] = "pending"

    with transaction.atomic():
        campaign.variables = _ai_state_save(campaign.pk, mark).variables
        tasks.enqueue("campaigns.tasks.ai_samples_write", campaign.pk, contact_code, queue="bulk")
    return True


def ai_samples_write(*, campaign_id: int, contact_code: str = "") -> int:
    """Generate the preview texts for the audience sample; returns how many contacts."""
    campaign = Campaign.objects.select_related("segment").get(pk=campaign_id)
    contacts = [
        c for c in ai_sample_contacts(campaign) if not contact_code or str(c.code) == contact_code
    ]
    results = texts_write(campaign=campaign, contacts=[contact_values(c) for c in contacts])

    def store(ai):
        for contact, result in zip(contacts, results, strict=True):
            ai["samples"][str(contact.code)] = {**result, "edited": []}
        ai["state"] = "ready"

    _ai_state_save(campaign_id, store)
    return len(contacts)


def ai_sample_edit(*, campaign: Campaign, contact_code: str, texts: dict[str, str]) -> None:
    """Staff's own wording for a previewed contact; sending uses it as is."""

    def edit(ai):
        sample = dict(ai["samples"].get(contact_code) or {"texts": {}, "errors": {}})
        sample["texts"] = {**sample.get("texts", {}), **texts}
        sample["errors"] = {k: v for k, v in sample.get("errors", {}).items() if k not in texts}
        sample["edited"] = sorted(set(sample.get("edited", [])) | set(texts))
        ai["samples"][contact_code] = sample

    campaign.variables = _ai_state_save(campaign.pk, edit).variables


# --- Campaign lifecycle -------------------------------------------------------------------------


def campaign_first_run(campaign: Campaign, now: datetime) -> datetime:
    org_tz = scheduling.zone(campaign.organization.time_zone)
    if campaign.schedule == Campaign.Schedule.NOW:
        return now
    if campaign.schedule == Campaign.Schedule.AT:
        return campaign.scheduled_at
    start, _day = _next_recurrence(campaign, now - timedelta(microseconds=1), org_tz)
    return start


def _next_recurrence(campaign: Campaign, after: datetime, org_tz):
    weekdays = campaign.weekdays if campaign.schedule == Campaign.Schedule.WEEKLY else None
    return scheduling.next_occurrence(
        after=after,
        send_time=campaign.send_time,
        weekdays=weekdays,
        org_tz=org_tz,
        per_contact=campaign.time_zone_mode == Campaign.TimeZoneMode.CONTACT,
    )


@transaction.atomic
def campaign_launch(*, campaign: Campaign) -> Campaign:
    """Draft → scheduled; a "send now" campaign starts on commit."""
    now = timezone.now()
    campaign.next_run_at = campaign_first_run(campaign, now)
    updated = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.DRAFT).update(
        status=Campaign.Status.SCHEDULED, next_run_at=campaign.next_run_at
    )
    if updated:
        campaign.status = Campaign.Status.SCHEDULED
        if campaign.next_run_at <= now:
            tasks.enqueue("campaigns.tasks.start_campaign", campaign.pk, queue="bulk")
        progress_publish(campaign.pk)
    return campaign


def campaign_pause(*, campaign: Campaign) -> bool:
    updated = Campaign.objects.filter(
        pk=campaign.pk, status__in=(Campaign.Status.RUNNING, Campaign.Status.SCHEDULED)
    ).update(status=Campaign.Status.PAUSED, dispatcher_token="")
    progress_publish(campaign.pk)
    return bool(updated)


def campaign_resume(*, campaign: Campaign) -> bool:
    """Paused → running when the current run still has recipients, else → scheduled."""
    pending = campaign.run > 0 and (
        campaign.expanded_run < campaign.run
        or campaign.recipients.filter(run=campaign.run, status__in=PENDING_STATUSES).exists()
    )
    target = Campaign.Status.RUNNING if pending else Campaign.Status.SCHEDULED
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.PAUSED).update(
            status=target
        )
        if updated and target == Campaign.Status.RUNNING:
            tasks.enqueue("campaigns.tasks.dispatch_campaign", campaign.pk, queue="bulk")
        elif updated and campaign.next_run_at and campaign.next_run_at <= timezone.now():
            tasks.enqueue("campaigns.tasks.start_campaign", campaign.pk, queue="bulk")
    progress_publish(campaign.pk)
    return bool(updated)


@transaction.atomic
def campaign_cancel(*, campaign: Campaign) -> bool:
    updated = Campaign.objects.filter(
        pk=campaign.pk,
        status__in=(
            Campaign.Status.DRAFT,
            Campaign.Status.SCHEDULED,
            Campaign.Status.RUNNING,
            Campaign.Status.PAUSED,
        ),
    ).update(status=Campaign.Status.CANCELLED, completed_at=timezone.now(), next_run_at=None)
    if updated:
        CampaignRecipient.objects.filter(campaign=campaign, status=R.QUEUED).update(
            status=R.SKIPPED, reason=CampaignRecipient.Reason.CANCELLED
        )
    progress_publish(campaign.pk)
    return bool(updated)


def outgoing_message(campaign: Campaign, components: list) -> tuple[str, dict]:
    """What one recipient is sent, as (type, content): the approved template where the number's
    provider has templates; elsewhere the template's text with the recipient's values as a plain
    message (such a provider has no service window to reopen, so the template is only the
    campaign's wording)."""
    template = campaign.template
    if capabilities_for(campaign.number).templates:
        content = {"name": template.name, "language": {"code": template.language}}
        if components:
            content["components"] = components
        return Message.Type.TEMPLATE, content
    text = preview_text(template, components or []) or template.name
    return Message.Type.TEXT, {"body": text[:4096], "preview_url": False}


def campaign_test_send(*, campaign: Campaign, phone: str, actor) -> Message:
    """Send the campaign's template to a teammate's phone, through the inbox like any message."""
    region = default_region(campaign.organization)
    e164 = phone_normalize(phone, region)
    if e164 is None:
        raise inbox_services.SendRefused(_("That is not a valid phone number."))
    contact, _created = inbox_contacts.contact_get_or_create(
        organization_id=campaign.organization_id,
        phone=e164,
        defaults={"name": actor.display_name},
        source="test_send",
    )
    chat = inbox_services.chat_for_contact(number=campaign.number, contact=contact)
    # Assistant-written variables: the first previewed text (the teammate has no facts of a
    # contact to write from; generating happens in the background, never in this request).
    previewed = next(iter(ai_samples(campaign).values()), {})
    components = render_components(
        slots=template_slots(campaign.template),
        variables=campaign.variables,
        values=contact_values(contact),
        media_link=campaign.header_media_link,
        written=previewed.get("texts"),
    )
    message_type, content = outgoing_message(campaign, components)
    return inbox_services.message_send(
        chat=chat,
        message_type=message_type,
        content=content,
        author_type=Message.Author.CAMPAIGN,
        author_user=actor,
        author_ref=str(campaign.code),
    )


# --- Progress -----------------------------------------------------------------------------------

_last_publish: dict[int, float] = {}
PUBLISH_INTERVAL = 0.4


def campaign_counters_refresh(campaign_id: int) -> dict:
    counts = dict(
        CampaignRecipient.objects.filter(campaign_id=campaign_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    replied = counts.get(R.REPLIED, 0)
    read = counts.get(R.READ, 0) + replied
    delivered = counts.get(R.DELIVERED, 0) + read
    counters = {
        "total": sum(counts.values()),
        "sent": counts.get(R.SENT, 0) + delivered,
        "delivered": delivered,
        "read": read,
        "replied": replied,
        "failed": counts.get(R.FAILED, 0),
        "skipped": counts.get(R.SKIPPED, 0),
    }
    Campaign.objects.filter(pk=campaign_id).update(**counters)
    code = Campaign.objects.filter(pk=campaign_id).values_list("code", flat=True).first()
    counters["converted"] = campaign_converted(Campaign(pk=campaign_id, code=code)) if code else 0
    return counters


def progress_publish(campaign_id: int, *, force: bool = True) -> None:
    """Refresh the counters and tell the organization's pages (at most a few times a second
    per campaign unless ``force``)."""
    import time

    now = time.monotonic()
    if not force and now - _last_publish.get(campaign_id, 0) < PUBLISH_INTERVAL:
        return
    _last_publish[campaign_id] = now
    counters = campaign_counters_refresh(campaign_id)
    campaign = Campaign.objects.select_related("organization").filter(pk=campaign_id).first()
    if campaign is None:
        return
    done = counters["sent"] + counters["failed"] + counters["skipped"]
    data = {
        "type": "campaign.progress",
        "campaign": str(campaign.code),
        "status": campaign.status,
        "status_label": str(campaign.get_status_display()),
        "percent": int(100 * done / counters["total"]) if counters["total"] else 0,
        **counters,
    }
    realtime.publish_on_commit(
        organization_group(campaign.organization), {"type": "live.event", "data": data}
    )
