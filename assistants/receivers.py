"""Subscriptions to the inbox's domain events (see ``inbox.signals``): quick, they only enqueue."""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from assistants import knowledge, services
from assistants import signals as assistant_signals
from assistants.models import AISettings, Assistant, KnowledgeSource
from inbox import router, signals
from inbox.models import Chat, Message
from kernel import tasks


def _answers(inbound: router.Inbound) -> bool:
    return services.answers_chat(chat=inbound.chat, new_chat=inbound.new_chat)


def _answer(inbound: router.Inbound) -> None:
    if inbound.message.type != Message.Type.AUDIO:  # a voice note is answered once transcribed
        services.reply_schedule(message=inbound.message)


# Last: whatever an automation, a flow or a booking takes is theirs, the rest the assistant's.
router.register(
    router.Handler(
        key=services.HANDLER, order=90, label=_("AI assistant"), accepts=_answers, handle=_answer
    )
)


@receiver(signals.message_received, dispatch_uid="assistants-message-received")
def transcribe(sender, *, message, **kwargs):
    # Voice notes are transcribed for the team too; the owner (if the assistant) answers after.
    if message.type == Message.Type.AUDIO:
        tasks.enqueue("assistants.tasks.transcribe_voice_note", message.pk, queue="ai")


@receiver(signals.message_created, dispatch_uid="assistants-message-created")
def pause_on_human_reply(sender, *, message, **kwargs):
    if message.author_type == Message.Author.USER and message.direction == "out":
        tasks.enqueue("assistants.tasks.pause_for_human_reply", message.pk)


@receiver(signals.chat_changed, dispatch_uid="assistants-chat-changed")
def on_chat_changed(sender, *, chat, change, data=None, **kwargs):
    if change == "created":
        services.new_chat_enable(chat=chat)
    elif change == "status" and (data or {}).get("status") == Chat.Status.RESOLVED:
        tasks.enqueue("assistants.tasks.analyze_chat", chat.pk, queue="bulk")


@receiver(signals.contact_erasing, dispatch_uid="assistants-contact-erasing")
def forget_erased_contact(sender, *, contact, **kwargs):
    # Inside the erasure's transaction: the analyses' free text retells the conversation.
    services.contact_analyses_erase(contact=contact)


from assistants import outgoing_events  # noqa: F401,E402  (webhook events for integrators)


@receiver(assistant_signals.analysis_completed, dispatch_uid="assistants-analysis-lead-score")
def keep_lead_score(sender, *, analysis, **kwargs):
    services.contact_lead_score_update(analysis=analysis)


@receiver([post_save, post_delete], sender=Assistant, dispatch_uid="assistants-numbers-memo")
@receiver(m2m_changed, sender=Assistant.default_for_numbers.through, dispatch_uid="assistants-m2m")
def on_assistant_saved(sender, instance, **kwargs):
    organization_id = getattr(instance, "organization_id", None)
    if organization_id is not None:
        services.assistants_changed(organization_id)


@receiver(post_save, sender=AISettings, dispatch_uid="assistants-prices-memo")
def on_ai_settings_saved(sender, instance, **kwargs):
    services.prices_changed(instance.organization_id)


@receiver(post_delete, sender=KnowledgeSource, dispatch_uid="assistants-knowledge-memo")
def on_knowledge_source_deleted(sender, instance, **kwargs):
    knowledge.knowledge_changed(instance.assistant_id)
