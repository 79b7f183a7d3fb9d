"""Subscriptions to the WhatsApp channel's domain events (see ``integrations.signals``)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Team
from inbox import services
from inbox import signals as inbox_signals
from inbox.models import Chat
from inbox.tasks import chat_auto_assign
from integrations import signals
from kernel import outbox
from kernel.memo import ProcessMemo


@receiver(signals.message_received, dispatch_uid="inbox-message-received")
def store_inbound_message(sender, *, number, message, **kwargs):
    services.message_receive(number=number, inbound=message)


@receiver(signals.message_echoed, dispatch_uid="inbox-message-echoed")
def store_own_message(sender, *, number, message, **kwargs):
    from inbox import echoes

    echoes.message_echo_record(number=number, echo=message)


@receiver(signals.messages_batch_received, dispatch_uid="inbox-messages-batch-received")
def store_inbound_messages(sender, *, number, messages, **kwargs):
    services.messages_receive(number=number, inbounds=messages)


@receiver(signals.batch_starting, dispatch_uid="inbox-batch-starting")
def lock_chats_of_batch(sender, *, number, wa_ids, wamids, **kwargs):
    services.chats_lock_for_batch(number=number, wa_ids=wa_ids, wamids=wamids)


@receiver(signals.statuses_received, dispatch_uid="inbox-statuses-received")
def apply_statuses(sender, *, number, statuses, **kwargs):
    services.unknown_sends_reconcile(number=number, updates=statuses)
    services.message_statuses_apply(number=number, updates=statuses)


from inbox import outgoing_events  # noqa: F401,E402

AUTO_ASSIGN = "inbox.chat_auto_assign"
outbox.register(AUTO_ASSIGN, lambda payload: chat_auto_assign(payload["chat"]))


# Organizations with an auto-assigning team, per process (a team saved or deleted here forgets
# its organization at once; other processes see it within the memo's 2 s).
_auto_assigning = ProcessMemo(ttl=2.0)


def _auto_assigns(organization_id: int) -> bool:
    return _auto_assigning.get(
        organization_id,
        lambda: Team.objects.filter(organization_id=organization_id, auto_assign=True).exists(),
    )


@receiver([post_save, post_delete], sender=Team, dispatch_uid="inbox-team-auto-assign-memo")
def forget_auto_assigning(sender, *, instance, **kwargs):
    _auto_assigning.forget(instance.organization_id)


@receiver(inbox_signals.chat_changed, dispatch_uid="inbox-chat-auto-assign")
def auto_assign_new_chat(sender, *, chat, change, **kwargs):
    """A new chat goes to a team's round robin (``inbox.teamwork.chat_auto_assign``), through
    the outbox: a broker outage delays the assignment, never drops it. Chats an assistant
    answers, and organizations without an auto-assigning team, cost nothing here (a new
    customer's chat on the inbound path: no outbox row, no task)."""
    if change != "created" or chat.assignee_id is not None or chat.ai_enabled:
        return
    if _auto_assigns(chat.organization_id):
        outbox.add(AUTO_ASSIGN, {"chat": chat.pk}, organization_id=chat.organization_id)


@receiver(inbox_signals.message_received, dispatch_uid="inbox-snooze-ends-on-reply")
def end_snooze_on_customer_message(sender, *, message, **kwargs):
    """A customer writing ends the chat's snooze: it is back in the open list. The chat the
    inbound path loaded (in this transaction, after locking it) says whether it is snoozed, so
    most messages need no UPDATE."""
    loaded = message._state.fields_cache.get("chat")
    if loaded is not None and loaded.snoozed_until is None:
        return
    Chat.objects.filter(pk=message.chat_id, snoozed_until__isnull=False).update(
        snoozed_until=None, status=Chat.Status.OPEN
    )
