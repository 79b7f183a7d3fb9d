"""LGPD per contact: export everything we hold (a ZIP of JSON and media), erase personal data
while keeping anonymised aggregates, and purge old conversation content by retention policy."""

import io
import json
import zipfile
from datetime import timedelta

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from inbox import contacts as inbox_contacts
from inbox.models import Contact, Media, Message
from integrations.models import WebhookEvent
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
    if apps.is_installed("appointments"):
        data["appointments"] = list(
            apps.get_model("appointments", "Appointment")
            .objects.filter(contact=contact)
            .order_by("starts_at")
            .values(
                "service__name", "professional__name", "starts_at", "ends_at", "status",
                "channel", "notes",
            )
        )  # fmt: skip
    if apps.is_installed("flows"):
        data["flow_runs"] = _flow_runs(contact)
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


def _flow_runs(contact: Contact) -> list[dict]:
    """The contact's runs through conversation flows: what they answered (the run's variables)
    and the path they took, step by step."""
    run_model = apps.get_model("flows", "FlowRun")
    runs = (
        run_model.objects.filter(chat__contact=contact)
        .select_related("flow", "version", "chat")
        .prefetch_related("steps")
        .order_by("started_at")
    )
    return [
        {
            "flow": run.flow.name,
            "version": run.version.number,
            "chat": run.chat.code,
            "status": run.status,
            "trigger": run.trigger,
            "answers": run.variables,
            "outcome": run.outcome,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "steps": [
                {
                    "node": step.node,
                    "type": step.node_type,
                    "took": step.port,
                    "detail": step.detail,
                    "at": step.entered_at,
                }
                for step in sorted(run.steps.all(), key=lambda s: s.index)
            ],
        }
        for run in runs
    ]


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


def contact_erase(*, contact: Contact, actor, request=None) -> ErasedContact:
    """Erase the contact's personal data (``inbox.contacts.contact_erase`` does it everywhere,
    in one transaction); the mark and the audit entry are written by ``erasure_record``, in
    that transaction, whoever asked (this page, the admin, the API's DELETE)."""
    inbox_contacts.contact_erase(contact=contact, actor=actor, request=request)
    contact.refresh_from_db()
    return ErasedContact.objects.get(contact=contact)


def erasure_record(*, contact: Contact, token: str, actor, request, erasure) -> ErasedContact:
    """The mark an erased contact keeps (who erased it, when) and its audit entry."""
    erased, _created = ErasedContact.objects.update_or_create(
        contact=contact,
        defaults={"organization_id": contact.organization_id, "token": token, "erased_by": actor},
    )
    audit_record(
        action=AuditEvent.Action.CONTACT_ERASED,
        organization=contact.organization,
        actor=actor,
        request=request,
        target=contact,
        target_label=contact_label(contact),
        data={"messages": erasure.messages, "media": erasure.media, "token": token},
    )
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
        inbox_contacts.media_delete(Media.objects.filter(message__in=old))
        inbox_contacts.media_delete(
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
        # The raw webhook log repeats those messages: it goes with them if kept longer.
        WebhookEvent.objects.filter(
            organization_id=policy.organization_id,
            received_at__lt=cutoff,
            processed_at__isnull=False,
        ).delete()
        if deleted:
            audit_record(
                action=AuditEvent.Action.RETENTION_PURGED,
                organization=policy.organization,
                target=policy,
                target_label=policy.organization.name,
                data={"messages": deleted, "before": cutoff.isoformat()},
            )
    return deleted
