"""The one owner of contact writes: create, update, import (bulk upsert) and erase (LGPD).

Pages, the API, the import, assistants' tools and campaigns call these functions, so every
change sends the same event after it commits (``signals.contact_changed`` per contact and
``signals.contacts_changed`` per operation): "created" fires the new-contact automations and
the ``contact.created`` webhook whichever way the contact arrived. The inbound hot path
(``services.contact_for_inbound``) creates contacts on its own, with the same event.

Consent (opt-in/opt-out) has its own ledger in ``campaigns.services.contact_set_consent``.
"""

import secrets
from dataclasses import dataclass

from django.apps import apps
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiIdempotencyKey
from inbox import signals
from inbox.models import Contact, Media, Message
from integrations import outgoing
from integrations import services as channel

# Fields a write may set directly; the rest are kept by their own services (consent, lead score,
# last inbound) or by this module (conversion, erasure).
FIELDS = ("name", "profile_name", "email", "language", "time_zone", "notes", "stage")
IMPORT_FIELDS = ("name", "email", "language", "time_zone", "stage")
UPSERT_CHUNK = 1000


def clean_tags(tags) -> list[str]:
    """Trimmed (40 characters), without blanks or repeats, in the given order."""
    seen: list[str] = []
    for tag in tags:
        tag = str(tag).strip()[:40]
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def _apply(contact: Contact, data: dict, *, source: str) -> list[str]:
    """Set ``data`` on ``contact`` (unsaved); returns the names of the fields that changed.

    ``tags``/``attributes`` replace; ``tags_add``/``attributes_merge`` add to what is there.
    """
    before = {name: getattr(contact, name) for name in (*FIELDS, "tags", "attributes")}
    for name in FIELDS:
        if name in data:
            setattr(contact, name, data[name])
    if "tags" in data:
        contact.tags = clean_tags(data["tags"])
    if data.get("tags_add"):
        contact.tags = clean_tags([*contact.tags, *data["tags_add"]])
    if "attributes" in data:
        contact.attributes = dict(data["attributes"])
    if data.get("attributes_merge"):
        contact.attributes = {**contact.attributes, **data["attributes_merge"]}
    changed = [name for name, value in before.items() if getattr(contact, name) != value]
    if contact.stage == Contact.Stage.CUSTOMER and contact.converted_at is None:
        contact.converted_at, contact.conversion_source = timezone.now(), source
        changed += ["converted_at", "conversion_source"]
    return changed


def contact_create(
    *, organization_id: int, phone: str, data: dict | None = None, source: str
) -> Contact:
    """A new contact with an E.164 ``phone`` (its WhatsApp id is the digits). Raises
    ``IntegrityError`` when the organization already has that WhatsApp id."""
    contact = Contact(organization_id=organization_id, wa_id=phone.lstrip("+"), phone=phone)
    _apply(contact, data or {}, source=source)
    with transaction.atomic():
        contact.save(force_insert=True)
    signals.contact_changed_on_commit(contact=contact, change="created", data={"source": source})
    return contact


def contact_get_or_create(
    *, organization_id: int, phone: str, defaults: dict | None = None, source: str
) -> tuple[Contact, bool]:
    """The organization's contact with this E.164 ``phone``'s WhatsApp id, created (with
    ``defaults``) when missing; safe when two requests create it at once."""
    wa_id = phone.lstrip("+")
    found = Contact.objects.filter(organization_id=organization_id, wa_id=wa_id).first()
    if found is not None:
        return found, False
    try:
        return contact_create(
            organization_id=organization_id, phone=phone, data=defaults, source=source
        ), True
    except IntegrityError:
        return Contact.objects.get(organization_id=organization_id, wa_id=wa_id), False


@transaction.atomic
def contact_update(*, contact: Contact, data: dict, source: str = "staff") -> list[str]:
    """Change the contact's fields, tags and attributes (see ``_apply`` for ``data``), under a
    row lock so concurrent edits (a teammate, an assistant, an automation) never lose each
    other's tags. Updates ``contact`` in place; returns the fields that changed (none: no
    write, no event). The event's data says which fields and which tags were added."""
    stored = Contact.objects.select_for_update().get(pk=contact.pk)
    tags_before = list(stored.tags)
    changed = _apply(stored, data, source=source)
    if changed:
        stored.save(update_fields=[*changed, "updated_at"])
    for field in Contact._meta.concrete_fields:
        setattr(contact, field.attname, getattr(stored, field.attname))
    if changed:
        added = [tag for tag in stored.tags if tag not in tags_before]
        signals.contact_changed_on_commit(
            contact=contact,
            change="updated",
            data={"source": source, "fields": changed, "tags_added": added},
        )
    return changed


@dataclass
class Upserted:
    created: list[Contact]
    updated: list[Contact]  # every row that found a contact, changed or not
    changed: list[Contact]  # those of ``updated`` that changed


def contacts_upsert(*, organization_id: int, rows: dict[str, dict], source: str) -> Upserted:
    """Create or update many contacts by E.164 phone (``rows``: phone → values), as an import
    does: non-empty ``IMPORT_FIELDS`` overwrite, ``tags`` and ``attributes`` add to what the
    contact has. A contact is found by WhatsApp id or phone. Writes in bulk (one INSERT and one
    UPDATE per ``UPSERT_CHUNK`` rows) and sends one "created" and one "updated" event per
    operation, each carrying every contact (receivers batch their work)."""
    result = Upserted(created=[], updated=[], changed=[])
    phones = list(rows)
    with transaction.atomic():
        for start in range(0, len(phones), UPSERT_CHUNK):
            _upsert_chunk(organization_id, {p: rows[p] for p in phones[start:start + UPSERT_CHUNK]},
                          source, result)  # fmt: skip
    signals.contacts_changed_on_commit(
        contacts=result.created, change="created", data={"source": source}
    )
    signals.contacts_changed_on_commit(
        contacts=result.changed, change="updated", data={"source": source}
    )
    return result


def _import_values(values: dict) -> dict:
    data = {name: values[name][:255] for name in IMPORT_FIELDS if values.get(name)}
    data["tags_add"] = values.get("tags") or []
    data["attributes_merge"] = values.get("attributes") or {}
    return data


def _upsert_chunk(organization_id: int, rows: dict[str, dict], source: str, result) -> None:
    wa_ids = {phone.lstrip("+"): phone for phone in rows}
    existing = list(
        Contact.objects.select_for_update()
        .filter(organization_id=organization_id)
        .filter(Q(wa_id__in=list(wa_ids)) | Q(phone__in=list(rows)))
        .order_by("pk")
    )
    by_phone: dict[str, Contact] = {}
    for contact in existing:  # a WhatsApp id match wins over a phone match
        if contact.phone in rows:
            by_phone.setdefault(contact.phone, contact)
    for contact in existing:
        if contact.wa_id in wa_ids:
            by_phone[wa_ids[contact.wa_id]] = contact
    changed_fields: set[str] = set()
    to_update: dict[int, Contact] = {}
    to_create: list[Contact] = []
    for phone, values in rows.items():
        contact = by_phone.get(phone)
        if contact is None:
            contact = Contact(organization_id=organization_id, wa_id=phone.lstrip("+"), phone=phone)
            _apply(contact, _import_values(values), source=source)
            to_create.append(contact)
            continue
        result.updated.append(contact)
        changed = _apply(contact, _import_values(values), source=source)
        if changed:
            changed_fields.update(changed)
            to_update[contact.pk] = contact
    result.changed += to_update.values()
    if to_update:
        now = timezone.now()
        for contact in to_update.values():
            contact.updated_at = now
        Contact.objects.bulk_update(to_update.values(), [*sorted(changed_fields), "updated_at"])
    if to_create:
        Contact.objects.bulk_create(to_create)
        if any(contact.pk is None for contact in to_create):  # backends without RETURNING
            stored = dict(
                Contact.objects.filter(
                    organization_id=organization_id, wa_id__in=[c.wa_id for c in to_create]
                ).values_list("wa_id", "pk")
            )
            for contact in to_create:
                contact.pk = stored[contact.wa_id]
        result.created += to_create


# --- LGPD erasure ---------------------------------------------------------------------------


@dataclass
class Erasure:
    contact: Contact
    token: str
    messages: int = 0
    media: int = 0
    already: bool = False


def media_delete(queryset) -> int:
    """Delete media rows now and their files once the transaction commits."""
    count = 0
    for media in queryset.only("pk", "file"):
        if media.file:
            name, storage = media.file.name, media.file.storage
            transaction.on_commit(lambda name=name, storage=storage: storage.delete(name))
        count += 1
    queryset.delete()
    return count


@transaction.atomic
def contact_erase(*, contact: Contact, actor=None, request=None) -> Erasure:
    """Remove the contact's personal data everywhere we hold it; keep rows that reports count.

    Messages stay (direction, type, status and times feed the aggregates) with text, content
    and media removed; the contact keeps its row with an anonymous token in place of name,
    phone and WhatsApp id, and is marked erased. Below the inbox: the raw webhook log, outgoing
    webhook deliveries, stored API answers and the admin's change history. Apps above clear
    their own data in the same transaction (``signals.contact_erasing``; reports records the
    audit entry there). Repeating it changes nothing and answers ``already=True``.
    """
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.erased_at is not None:
        return Erasure(contact=contact, token=contact.name, already=True)
    token = f"erased-{secrets.token_hex(6)}"
    erasure = Erasure(contact=contact, token=token)
    messages = Message.objects.filter(chat__contact=contact)
    erasure.media = media_delete(Media.objects.filter(message__in=messages))
    erasure.messages = messages.update(text="", content={}, error_details="", reply_to_wamid="")
    contact.chats.update(last_message_preview="", tags=[])
    channel.webhook_log_erase(organization_id=contact.organization_id, wa_id=contact.wa_id)
    outgoing.deliveries_erase(organization_id=contact.organization_id, needles=_references(contact))
    _stored_answers_erase(contact)
    _admin_history_erase(contact, token)
    signals.contact_erasing.send(
        sender=Contact, contact=contact, token=token, actor=actor, request=request, erasure=erasure
    )
    now = timezone.now()
    values = {
        "wa_id": token, "phone": token[:20], "profile_name": "", "name": token, "email": "",
        "tags": [], "attributes": {}, "language": "", "time_zone": "", "notes": "",
        "opt_in": Contact.OptIn.OPTED_OUT, "opt_in_source": "erased", "opt_in_at": now,
        "erased_at": now,
    }  # fmt: skip
    Contact.objects.filter(pk=contact.pk).update(**values)
    for name, value in values.items():
        setattr(contact, name, value)
    signals.contact_changed_on_commit(contact=contact, change="erased", data={})
    return erasure


def _references(contact: Contact) -> list[str]:
    """Strings that identify the contact in stored JSON: its id, phone, its chats' ids."""
    chats = [str(code) for code in contact.chats.values_list("code", flat=True)]
    return [str(contact.code), contact.phone, *chats]


def _stored_answers_erase(contact: Contact) -> None:
    """API answers kept for idempotent retries (a message sent in the contact's chat, with its
    text) that show the contact: a retry now answers 410 instead."""
    mentions = Q()
    for reference in _references(contact):
        mentions |= Q(response_body__icontains=reference)
    ApiIdempotencyKey.objects.filter(mentions, organization_id=contact.organization_id).update(
        response_status=410,
        response_body={
            "error": {
                "code": "contact_erased",
                "message": "This contact's data was erased.",
                "details": {},
            }
        },
    )


def _admin_history_erase(contact: Contact, token: str) -> None:
    """The admin's change history names objects by ``str()``: the contact's name, its chats'."""
    if not apps.is_installed("django.contrib.admin"):
        return
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    chat_model = Contact.chats.rel.related_model
    objects = [
        (Contact, [contact.pk]),
        (chat_model, list(contact.chats.values_list("pk", flat=True))),
    ]
    for model, pks in objects:
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=[str(pk) for pk in pks],
        ).update(object_repr=token, change_message="")
