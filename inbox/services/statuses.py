"""Delivery statuses from WhatsApp: a status only moves forward; early ones wait as orphans."""

import logging

from django.db import connection, transaction

from inbox import signals
from inbox.models import Message, OrphanStatus
from inbox.services.events import publish_chat_events
from integrations.events import StatusUpdate
from integrations.models import WhatsAppNumber

logger = logging.getLogger(__name__)


# A status only moves forward; "failed" is final unless the message was already delivered.
STATUS_RANK = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
    Message.Status.FAILED: 4,
}
STATUS_TIMESTAMP = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "read": "read_at",
    "failed": "failed_at",
}


@transaction.atomic(savepoint=False)  # no savepoint when nested: hot path
def message_statuses_apply(*, number: WhatsAppNumber, updates: list[StatusUpdate]) -> None:
    """Move outbound messages' statuses forward, in the order the updates came; keep a status
    for an unknown wamid to apply when the message appears (the webhook can beat the send
    call's response).

    A webhook batch carries dozens of updates, so the work is done in bulk: one query finds
    (and locks, in id order, the same order every worker uses) every message they name, one
    UPDATE saves the changes, and one more numbers their live events; a repeated or stale
    status costs nothing more.
    """
    wamids = {update.wamid for update in updates}
    messages = {
        message.wamid: message
        for message in Message.objects.select_for_update(of=("self",))
        .select_related("chat", "chat__organization")
        .filter(number=number, wamid__in=wamids)
        .order_by("pk")
    }
    applied = []
    for update in updates:
        message = messages.get(update.wamid)
        if message is None:
            _orphan_status_keep(number, update)
        else:
            error = update.error.__dict__ if update.error else {}
            applied.append((message, update.status, update.timestamp, error))
    _statuses_record(applied)


def _orphan_status_keep(number: WhatsAppNumber, update: StatusUpdate) -> None:
    OrphanStatus.objects.get_or_create(
        number=number,
        wamid=update.wamid,
        status=update.status,
        defaults={
            "organization_id": number.organization_id,
            "timestamp": update.timestamp,
            "error": update.error.__dict__ if update.error else {},
        },
    )
    # The send may be recording this wamid right now, in a transaction we cannot see yet.
    # Each side writes, commits, then looks for the other: whichever looks last finds it.
    number_id, wamid = number.pk, update.wamid
    transaction.on_commit(lambda: message_orphans_apply(number_id=number_id, wamid=wamid))


def _statuses_record(applied: list[tuple[Message, str, object, dict]]) -> None:
    """Apply (message, status, when, error) in order to messages locked by the caller, then save
    every change with one UPDATE, send one live event per changed message (with its final
    status) and, after commit, the domain events: one per status change."""
    changed: dict[int, tuple[Message, set]] = {}
    changes = []
    for message, status, when, error in applied:
        fields, previous = _status_move(message, status, when, error)
        if fields:
            changed.setdefault(message.pk, (message, set()))[1].update(fields)
        if previous is not None:
            changes.append((message, message.status, previous))
    if not changed:
        return
    _rows_update(
        Message,
        {
            pk: {name: getattr(message, name) for name in fields}
            for pk, (message, fields) in changed.items()
        },
    )
    publish_chat_events(
        [
            (
                message.chat,
                "message.status",
                {"message": str(message.code), "status": message.status},
            )
            for message, _fields in changed.values()
        ]
    )
    if changes:
        status_changes_on_commit(changes)


def _status_move(message: Message, status: str, when, error: dict) -> tuple[list[str], str | None]:
    """Apply one status to ``message`` in memory; returns (fields changed, the previous status if
    the status moved). Moves only forward: sent < delivered < read; "failed" is final, and
    ignored once the message was delivered."""
    if status == "played":  # a voice note was played: it was read
        status = Message.Status.READ
    if status not in STATUS_TIMESTAMP:
        return [], None
    current = STATUS_RANK.get(message.status, 0)
    if status == Message.Status.FAILED and current >= STATUS_RANK[Message.Status.DELIVERED]:
        logger.info("Late failure of delivered message %s ignored", message.wamid)
        return [], None
    fields, previous = [], None
    stamp = STATUS_TIMESTAMP[status]
    if getattr(message, stamp) is None:
        setattr(message, stamp, when)
        fields.append(stamp)
    if STATUS_RANK[status] > current:
        previous, message.status = message.status, status
        fields.append("status")
        if status == Message.Status.FAILED:
            message.error_code = error.get("code")
            message.error_title = (error.get("title") or "")[:255]
            message.error_details = error.get("details") or error.get("message") or ""
            fields += ["error_code", "error_title", "error_details"]
    return fields, previous


def status_changes_on_commit(changes: list[tuple[Message, str, str]]) -> None:
    """After commit, announce (message, status, previous) changes: one ``message_status_changed``
    each (outgoing webhooks send one event per status), then all at once for bulk receivers."""

    def send():
        for message, status, previous in changes:
            signals.message_status_changed.send(
                sender=None, message=message, status=status, previous=previous
            )
        signals.message_statuses_changed.send(sender=None, changes=changes)

    transaction.on_commit(send)


def _rows_update(model, rows: dict[int, dict[str, object]]) -> None:
    """Save rows that each change their own fields to their own values, in one UPDATE
    (``SET field = CASE id WHEN … THEN … ELSE field END``) instead of one per row. Django's
    ``bulk_update`` does the same, but building its expressions cost the webhook drain 12%."""
    columns: dict[str, list] = {}
    for row_id, values in rows.items():
        for name, value in values.items():
            columns.setdefault(name, []).append((row_id, value))
    quote = connection.ops.quote_name
    id_column = quote(model._meta.pk.column)
    assignments, params = [], []
    for name, values in columns.items():
        field = model._meta.get_field(name)
        column = quote(field.column)
        assignments.append(
            f"{column} = CASE {id_column} {'WHEN %s THEN %s ' * len(values)}ELSE {column} END"
        )
        for row_id, value in values:
            params += [row_id, field.get_db_prep_save(value, connection)]
    placeholders = ", ".join(["%s"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(model._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
            f"WHERE {id_column} IN ({placeholders})",
            [*params, *rows],
        )


def _apply_orphan_statuses(message: Message) -> None:
    orphans = list(OrphanStatus.objects.filter(number_id=message.number_id, wamid=message.wamid))
    orphans.sort(key=lambda orphan: STATUS_RANK.get(orphan.status, 0))
    _statuses_record([(message, o.status, o.timestamp, o.error) for o in orphans])
    if orphans:
        OrphanStatus.objects.filter(pk__in=[o.pk for o in orphans]).delete()


def message_orphans_apply(*, number_id: int, wamid: str) -> None:
    """Apply the statuses kept for ``wamid`` if its message is known now (else they stay)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("chat")
            .filter(number_id=number_id, wamid=wamid)
            .first()
        )
        if message is not None:
            _apply_orphan_statuses(message)


def orphan_statuses_apply(*, message: Message) -> None:
    """Apply statuses that arrived before ``message``'s wamid was stored (public entry point for
    apps that store outbound messages themselves, e.g. campaign sends)."""
    _apply_orphan_statuses(message)
