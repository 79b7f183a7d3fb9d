"""Subscriptions: consent keywords and reply attribution on inbound messages, recipient status
from the inbox's status changes, and send reconciliation from the status webhook's callback data.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from campaigns import automations, dispatch, drips, services
from campaigns import tasks as campaign_tasks
from campaigns.models import AudienceSettings, DripProgram
from inbox import router
from inbox import signals as inbox_signals
from integrations import signals as channel_signals
from kernel import outbox

INBOUND_FOLLOWUPS = "campaigns.inbound_followups"

# --- The conversation router's handlers (see ``inbox.router``) --------------------------------


def _consent_accepts(inbound: router.Inbound) -> bool:
    return services.consent_keyword(inbound.message) is not None


def _consent_handle(inbound: router.Inbound) -> None:
    services.inbound_consent_apply(message=inbound.message)


def _drip_accepts(inbound: router.Inbound) -> bool:
    delivery = drips.question_awaiting_answer(
        message=inbound.message, contact_id=inbound.contact.pk
    )
    inbound.notes["drip_delivery"] = delivery
    return delivery is not None


def _drip_handle(inbound: router.Inbound) -> None:
    drips.answer_receive(message=inbound.message, delivery=inbound.notes["drip_delivery"])


# STOP must hold before anything else is sent, even while a flow waits for an answer.
router.register(
    router.Handler(
        key="consent",
        order=10,
        label=_("opt-out keywords"),
        accepts=_consent_accepts,
        handle=_consent_handle,
        preempts_hold=True,
    )
)
router.register(
    router.Handler(
        key="drip",
        order=30,
        label=_("question of the day"),
        accepts=_drip_accepts,
        handle=_drip_handle,
    )
)


def _inbound_followups(payload: dict) -> None:
    for message_id in payload["messages"]:
        campaign_tasks.inbound_followups(message_id)


outbox.register(INBOUND_FOLLOWUPS, _inbound_followups)


@receiver(inbox_signals.messages_stored, dispatch_uid="campaigns-messages-stored")
def on_messages_stored(sender, *, messages, **kwargs):
    # Bookkeeping (reply attribution, automations), kept off the inbound queue: recorded in the
    # storing transaction (one outbox entry per batch), so a broker outage cannot lose it.
    organizations = {message.organization_id for message in messages}
    outbox.add(
        INBOUND_FOLLOWUPS,
        {"messages": [message.pk for message in messages]},
        organization_id=organizations.pop() if len(organizations) == 1 else None,
    )


@receiver(inbox_signals.contact_changed, dispatch_uid="campaigns-contact-changed")
def on_contact_changed(sender, *, contact, change, **kwargs):
    if change == "opted_out":
        drips.enrolments_stop(contact=contact, reason="opted_out")


@receiver(inbox_signals.contacts_changed, dispatch_uid="campaigns-contacts-changed")
def on_contacts_changed(sender, *, contacts, change, **kwargs):
    # In bulk: an import's thousands of new contacts become a few automation tasks.
    automations.on_contacts_changed(contacts=contacts, change=change)


@receiver(inbox_signals.contact_erasing, dispatch_uid="campaigns-contact-erasing")
def on_contact_erasing(sender, *, contact, token, **kwargs):
    services.contact_data_erase(contact=contact, token=token)


@receiver(inbox_signals.chat_changed, dispatch_uid="campaigns-chat-changed")
def on_chat_changed(sender, *, chat, change, actor=None, data=None, **kwargs):
    automations.on_chat_changed(chat=chat, change=change, actor=actor, data=data or {})


@receiver(inbox_signals.message_statuses_changed, dispatch_uid="campaigns-statuses-changed")
def on_message_statuses_changed(sender, *, changes, **kwargs):
    services.recipients_status_apply(
        changes=[(message, status) for message, status, _previous in changes]
    )


@receiver(channel_signals.statuses_received, dispatch_uid="campaigns-status-callback")
def on_statuses_received(sender, *, number, statuses, **kwargs):
    # Runs inside the webhook's processing transaction, after the inbox stored the statuses (as
    # orphans when the send's own record has not landed yet).
    for status in statuses:
        if status.biz_opaque_callback_data.startswith(dispatch.CALLBACK_PREFIX):
            dispatch.reconcile_callback(
                callback_data=status.biz_opaque_callback_data, wamid=status.wamid
            )


@receiver(inbox_signals.chat_changed, dispatch_uid="campaigns-chat-tags-conversion")
def on_chat_tags(sender, *, chat, change, data=None, **kwargs):
    # A tag added in the inbox (by a teammate or an assistant) may be a campaign's conversion.
    if change == "tags":
        for tag in (data or {}).get("added") or []:
            services.conversion_apply(contact_id=chat.contact_id, kind="tag", value=tag)


@receiver(inbox_signals.contact_changed, dispatch_uid="campaigns-analysis-conversion")
def on_contact_analysed(sender, *, contact, change, data=None, **kwargs):
    # A conversation analysis's intent may be a campaign's conversion.
    if change == "analysis" and (data or {}).get("intent"):
        services.conversion_apply(contact_id=contact.pk, kind="intent", value=data["intent"])


from campaigns import outgoing_events  # noqa: F401,E402  (webhook events for integrators)


@receiver([post_save, post_delete], sender=AudienceSettings, dispatch_uid="campaigns-audience-memo")
def on_audience_settings_saved(sender, instance, **kwargs):
    services.audience_settings_changed(instance.organization_id)


@receiver([post_save, post_delete], sender=DripProgram, dispatch_uid="campaigns-drip-memo")
def on_drip_program_saved(sender, instance, **kwargs):
    drips.programs_changed(instance.organization_id)
