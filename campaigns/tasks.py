"""Thin tasks: ids in, services out. Safe to run twice (claims and leases in the database)."""

import logging

from django.conf import settings

from campaigns import automations, dispatch, drips, imports, services
from campaigns.models import Automation
from inbox.models import Message
from kernel import tasks

logger = logging.getLogger(__name__)


def tick():
    return dispatch.tick()


def start_campaign(campaign_id: int):
    if dispatch.run_start(campaign_id):
        return dispatch_campaign(campaign_id)
    return "not due"


def dispatch_campaign(campaign_id: int):
    """Dispatch for one time slice (shorter than the queue's task timeout), then hand over to a
    fresh task so a long campaign never runs into the timeout nor waits for the next tick."""
    outcome = dispatch.campaign_dispatch(campaign_id)
    if outcome == "slice" and settings.TASK_RUNNER != "inline":
        tasks.dispatch("campaigns.tasks.dispatch_campaign", campaign_id, queue="bulk")
    return outcome


def contact_import_run(import_id: int):
    return imports.import_run(import_id)


def contact_imports_resume():
    return imports.imports_resume()


# --- Automations and drips --------------------------------------------------------------------


def automations_tick():
    return {**automations.automations_tick(), "drips": drips.drips_tick()}


def automations_for_message(message_id: int):
    return len(automations.message_rules_run(message_id))


def automations_for_event(trigger: str, contact_id: int, chat_id, tags):
    return len(automations.event_rules_run(trigger, contact_id, chat_id, tags))


def automations_for_new_contacts(contact_ids: list[int]) -> int:
    """The "new contact" rules for a block of new contacts (an import's); each contact's rules
    run once (keyed by contact), so a retried task repeats nothing."""
    runs = 0
    for contact_id in contact_ids:
        try:
            runs += len(
                automations.event_rules_run(Automation.Trigger.NEW_CONTACT, contact_id, None, [])
            )
        except Exception:  # one contact's failure must not cost the others their automations
            logger.exception("New-contact automations failed for contact %s", contact_id)
    return runs


def grade_drip_answer(delivery_id: int):
    return bool(drips.answer_grade(delivery_id))


def ai_samples_write(campaign_id: int, contact_code: str = ""):
    """The assistant-written previews of a campaign's audience sample."""
    return services.ai_samples_write(campaign_id=campaign_id, contact_code=contact_code)


def inbound_followups(message_id: int):
    """A customer's message, after its owner took it (``inbox.router``): campaign reply
    attribution and conversions, automation rules."""
    message = Message.objects.select_related("chat__contact").filter(pk=message_id).first()
    if message is None:
        return
    services.reply_attribute(message=message)
    automations.on_message_received(message=message)
