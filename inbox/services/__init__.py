"""Changes to contacts, chats and messages, one module per family; every change publishes a live
event after commit.

Callers import from ``inbox.services`` (task paths and other apps keep working); the families:
``receive`` (customer messages in, batched), ``statuses`` (delivery statuses), ``send`` (messages
out, composer extras), ``media`` (inbound media), ``chats`` (conversation actions), ``events``
(live events).
"""

from inbox.services.chats import (  # noqa: F401
    _record_activity,
    chat_assign,
    chat_mark_read,
    chat_set_ai,
    chat_set_status,
    chat_set_tags,
    chat_wait_for_person,
    note_add,
    quick_reply_save,
    read_receipt_send,
)
from inbox.services.events import (  # noqa: F401
    message_preview,
    publish_chat_event,
    publish_chat_events,
)
from inbox.services.media import (  # noqa: F401
    MEDIA_DOWNLOAD_ATTEMPTS,
    MEDIA_TYPES,
    media_download,
)
from inbox.services.receive import (  # noqa: F401
    CHANGE_TYPES,
    chat_for_contact,
    chats_lock_for_batch,
    contact_for_inbound,
    e164,
    message_receive,
    messages_receive,
)
from inbox.services.send import (  # noqa: F401
    CALLBACK_PREFIX,
    PERSON_REPLY_LOOKBACK,
    SEND_BACKOFF_BASE,
    SEND_BACKOFF_MAX,
    SEND_MAX_ATTEMPTS,
    SENDING,
    UNKNOWN,
    SendRefused,
    _outbound_text,
    _send_failed,
    interrupted_sends_sweep,
    lost_sends_requeue,
    message_deliver,
    message_react,
    message_send,
    message_send_attachment,
    unknown_sends_reconcile,
)
from inbox.services.statuses import (  # noqa: F401
    STATUS_RANK,
    STATUS_TIMESTAMP,
    _apply_orphan_statuses,
    message_orphans_apply,
    message_statuses_apply,
    orphan_statuses_apply,
)
