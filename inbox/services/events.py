"""Live events of chats: small JSON notices published after commit (the browser fetches its fragments)."""

import logging
from collections import Counter

from django.db import connection

from inbox.consumers import organization_group, user_group
from inbox.models import Chat, Message
from kernel import realtime, sql
from kernel.sql import fetchall_prepared

logger = logging.getLogger(__name__)


# --- Live events ------------------------------------------------------------------------------


def publish_chat_event(chat: Chat, event_type: str, *, columns: dict | None = None, **data):
    """Number the event in the chat's sequence and send it, after commit, to everyone who may
    see the chat: the organization's group and the assignee (agents see only their own).
    ``columns``: other fields of the chat to set in the same UPDATE (a message's preview and
    time), one statement instead of two."""
    publish_chat_events([(chat, event_type, data)], columns=columns)


def publish_chat_events(
    events: list[tuple[Chat, str, dict]], *, columns: dict | None = None
) -> None:
    """``publish_chat_event`` for many events (a webhook batch's status changes): one statement
    numbers them all, each chat's in the order given, and sets ``columns`` on each of them.
    Several chats must already be locked in a fixed order (see ``chats_lock_for_batch``)."""
    if not events:
        return
    statement, params, counts = _numbering(events, columns)
    if len(counts) == 1:
        # One chat (a send, a message received): a few shapes, run at every message, so
        # prepared (planned once per connection). A batch's shape depends on its size, and
        # would push the hot statements out of the connection's prepared ones.
        rows = fetchall_prepared(statement, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
    _publish_numbered(events, rows, counts)


def message_insert_publishing(
    new: Message, event_type: str, /, *, columns: dict | None = None, **data
) -> Message:
    """Insert the ``new`` message and ``publish_chat_event`` its chat's ``event_type`` in one
    statement (``kernel.sql.insert_then``): an API send's round trips are its cost."""
    events = [(new.chat, event_type, data)]
    statement, params, counts = _numbering(events, columns)
    _publish_numbered(events, sql.insert_then(new, statement, params), counts)
    return new


def _numbering(events: list[tuple[Chat, str, dict]], columns: dict | None):
    """The UPDATE that numbers ``events`` and sets ``columns``, its parameters, and the
    number of events per chat."""
    counts = Counter(chat.pk for chat, _type, _data in events)
    if max(counts.values()) == 1:
        increment, params = "1", []
    else:
        increment = "CASE id " + "WHEN %s THEN %s " * len(counts) + "END"
        params = [value for pk, count in counts.items() for value in (pk, count)]
    sets = ""
    for name, value in (columns or {}).items():
        field = Chat._meta.get_field(name)
        sets += f", {connection.ops.quote_name(field.column)} = %s"
        params.append(field.get_db_prep_save(value, connection))
    placeholders = ", ".join(["%s"] * len(counts))
    statement = (
        f"UPDATE {Chat._meta.db_table} SET seq = seq + {increment}{sets} "  # noqa: S608
        f"WHERE id IN ({placeholders}) RETURNING id, seq"
    )
    return statement, [*params, *counts], counts


def _publish_numbered(events: list[tuple[Chat, str, dict]], rows, counts: Counter) -> None:
    seq = {pk: last - counts[pk] for pk, last in rows}
    for chat, event_type, data in events:
        seq[chat.pk] += 1
        chat.seq = seq[chat.pk]
        _chat_event_publish(chat, event_type, data)


def _chat_event_publish(chat: Chat, event_type: str, data: dict) -> None:
    """Send, after commit, a chat's event already numbered ``chat.seq``."""
    payload = {"type": event_type, "chat": str(chat.code), "seq": chat.seq, **data}
    event = {"type": "live.event", "data": payload}
    realtime.publish_on_commit(organization_group(chat.organization), event)
    if chat.assignee_id:
        realtime.publish_on_commit(user_group(chat.assignee), event)


def message_preview(message: Message) -> str:
    if message.text:
        return message.text[:200]
    return f"[{message.get_type_display()}]"
