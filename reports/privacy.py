"""LGPD per contact: export everything we hold (a ZIP of JSON and media), erase personal data
while keeping anonymised aggregates, and purge old conversation content by retention policy."""

import io
import json
import secrets
import zipfile
from datetime import timedelta

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from inbox.models import Contact, Media, Message
from reports.models import AuditEvent, CsatResponse, ErasedContact, RetentionPolicy
from reports.services import audit_record

CONTACT_FIELDS = (
    "code", "wa_id", "phone", "profile_name", "name", "email", "tags", "attributes", "language",
    "time_zone", "opt_in", "opt_in_at", "opt_in_source", "stage", "notes", "last_inbound_at",
    "created_at", "updated_at",
)  # fmt: skip
MESSAGE_FIELDS = (
    "code", "direction", "type", "text", "content", "status", "author_type", "author_ref",
    "timestamp", "sent_at", "delivered_at", "read_at", "failed_at", "error_code", "error_title",
)  # fmt: skip


def _row(obj, fields) -> dict:
    return {field: getattr(obj, field) for field in fields}


def contact_label(contact: Contact) -> str:
    """How the audit log names a contact: never personal data, which erasure must remove."""
    return f"contact {str(contact.code)[:8]}"


def _media_name(media: Media, message: Message) -> str:
    base = (media.filename or media.file.name.rsplit("/", 1)[-1] or f"media-{media.pk}").replace(
        "/", "_"
    )
    return f"media/{message.code}/{base}"


def contact_export_data(contact: Contact) -> tuple[dict, list[tuple[str, Media]]]:
    """Everything held about ``contact``, as JSON-ready data, and the media files to include."""
    files: list[tuple[str, Media]] = []
    chats = []
    for chat in contact.chats.select_related("number", "assignee").order_by("created_at"):
        messages = []
        for message in chat.messages.select_related("author_user").prefetch_related("media"):
            entry = _row(message, MESSAGE_FIELDS)
            entry["author"] = message.author_user.display_name if message.author_user else ""
            entry["media"] = []
            for media in message.media.all():
                if media.file:
                    name = _media_name(media, message)
                    files.append((name, media))
                    entry["media"].append(
                        {"file": name, "mime_type": media.mime_type, "size": media.size}
                    )
            messages.append(entry)
        chats.append(
            {
                "code": chat.code,
                "number": chat.number.display_phone_number,
                "status": chat.status,
                "assignee": chat.assignee.display_name if chat.assignee else "",
                "tags": chat.tags,
                "created_at": chat.created_at,
                "messages": messages,
            }
        )
    data = {
        "exported_at": timezone.now(),
        "organization": contact.organization.name,
        "contact": _row(contact, CONTACT_FIELDS),
        "chats": chats,
    }
    if apps.is_installed("campaigns"):
        data["consent_history"] = [
            {
                "opted_in": event.opted_in,
                "source": event.source,
                "detail": event.detail,
                "at": event.created_at,
            }
            for event in contact.consent_events.order_by("created_at")
        ]
        data["campaign_messages"] = list(
            contact.campaign_recipients.order_by("created_at").values(
                "campaign__name", "status", "sent_at", "delivered_at", "read_at", "replied_at"
            )
        )
    if apps.is_installed("assistants"):
        analysis_model = apps.get_model("assistants", "ConversationAnalysis")
        data["analyses"] = list(
            analysis_model.objects.filter(chat__contact=contact)
            .order_by("created_at")
            .values(
                "chat__code",
                "summary",
                "intent",
                "sentiment",
                "lead_score",
                "lead_score_reason",
                "next_step",
                "follow_up_on",
                "created_at",
            )  # fmt: skip
        )
    data["satisfaction_answers"] = list(
        CsatResponse.objects.filter(contact=contact)
        .order_by("responded_at")
        .values("chat__code", "score", "responded_at")
    )
    return data, files


def contact_export(*, contact: Contact, actor, request=None) -> bytes:
    """A ZIP with ``contact.json`` and every media file; the export is recorded in the audit log."""
    data, files = contact_export_data(contact)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "contact.json", json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
        )
        for name, media in files:
            try:
                with media.file.open("rb") as handle:
                    archive.writestr(name, handle.read())
            except FileNotFoundError:
                continue
    audit_record(
        action=AuditEvent.Action.CONTACT_EXPORTED,
        organization=contact.organization,
        actor=actor,
        request=request,
        target=contact,
        target_label=contact_label(contact),
        data={"chats": len(data["chats"]), "media": len(files)},
    )
    return buffer.getvalue()


def _delete_media(queryset) -> int:
    count = 0
    for media in queryset.only("pk", "file"):
        if media.file:
            name, storage = media.file.name, media.file.storage
            transaction.on_commit(lambda name=name, storage=storage: storage.delete(name))
        count += 1
    queryset.delete()
    return count


@transaction.atomic
def contact_erase(*, contact: Contact, actor, request=None) -> ErasedContact:
    """Remove the contact's personal data and media; keep rows that reports count.

    Messages stay (direction, type, status and times feed the aggregates) with text, content
    and media removed; the contact keeps its row with an anonymous token in place of name,
    phone and WhatsApp id, and is marked erased.
    """
    existing = ErasedContact.objects.filter(contact=contact).first()
    if existing is not None:
        return existing
    token = f"erased-{secrets.token_hex(6)}"
    messages = Message.objects.filter(chat__contact=contact)
    media_count = _delete_media(Media.objects.filter(message__in=messages))
    message_count = messages.update(text="", content={}, error_details="", reply_to_wamid="")
    contact.chats.update(last_message_preview="", tags=[])
    Contact.objects.filter(pk=contact.pk).update(
        wa_id=token, phone=token[:20], profile_name="", name=token, email="", tags=[],
        attributes={}, language="", time_zone="", notes="", opt_in=Contact.OptIn.OPTED_OUT,
        opt_in_source="erased", opt_in_at=timezone.now(),
    )  # fmt: skip
    if apps.is_installed("campaigns"):
        contact.consent_events.update(detail="")
        contact.campaign_recipients.update(to=token[:32], components=[], error_detail="")
        contact.segments.clear()
    if apps.is_installed("assistants"):
        apps.get_model("assistants", "ConversationAnalysis").objects.filter(
            chat__contact=contact
        ).update(summary="", intent="", lead_score_reason="", next_step="")
    if apps.is_installed("flows"):  # answers captured by flows (emails, names, free text)
        apps.get_model("flows", "FlowRun").objects.filter(chat__contact=contact).update(
            variables={}
        )
    erased = ErasedContact.objects.create(
        organization=contact.organization, contact=contact, token=token, erased_by=actor
    )
    audit_record(
        action=AuditEvent.Action.CONTACT_ERASED,
        organization=contact.organization,
        actor=actor,
        request=request,
        target=contact,
        target_label=contact_label(contact),
        data={"messages": message_count, "media": media_count, "token": token},
    )
    contact.refresh_from_db()
    return erased


def retention_purge(policy: RetentionPolicy, *, now=None) -> int:
    """Delete the organization's messages (and their media files) older than the policy allows.

    Daily statistics for those days were aggregated before and are kept; ``rebuild_stats``
    never rebuilds days older than the retention cutoff.
    """
    if not policy.message_days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=policy.message_days)
    old = Message.objects.filter(organization_id=policy.organization_id, timestamp__lt=cutoff)
    with transaction.atomic():
        _delete_media(Media.objects.filter(message__in=old))
        _delete_media(
            Media.objects.filter(
                organization_id=policy.organization_id,
                message__isnull=True,
                created_at__lt=cutoff,
            )
        )
        deleted = (
            old.filter(pk__in=models.Subquery(old.values("pk")[:50000]))
            .delete()[1]
            .get(Message._meta.label, 0)
        )
        if deleted:
            audit_record(
                action=AuditEvent.Action.RETENTION_PURGED,
                organization=policy.organization,
                target=policy,
                target_label=policy.organization.name,
                data={"messages": deleted, "before": cutoff.isoformat()},
            )
    return deleted
