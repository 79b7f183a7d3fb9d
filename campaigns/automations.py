"""Automation rules: match an event to an organization's active rules, check their conditions,
run their actions and log every run (``AutomationRun``).

Events arrive from the inbox's domain signals (``campaigns.receivers``) as small tasks, and from
the periodic ``automations_tick`` (no reply for N hours, a date attribute N hours ahead).

Loops are cut three ways:

* only customers' inbound messages trigger message rules, so an automation's own sends never do;
  the "no reply" clock only starts on messages from people, assistants and campaigns;
* actions that raise events themselves (adding a tag) pass the chain of rules that led to them,
  and a rule in the chain never runs again from it (nor does a chain grow past ``MAX_CHAIN``);
* each rule runs at most ``max_runs`` times per contact every ``per_hours`` hours.
"""

import logging
import re
import unicodedata
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership
from campaigns import drips, scheduling
from campaigns import services as campaign_services
from campaigns.messaging import ActionSkipped, send_text_or_template
from campaigns.models import Automation, AutomationRun, CampaignRecipient, extra_action
from inbox import contacts as inbox_contacts
from inbox import services as inbox_services
from inbox.models import Chat, Contact, Message
from integrations import outgoing
from integrations.models import WhatsAppNumber
from kernel import outbox, tasks

logger = logging.getLogger(__name__)

T = Automation.Trigger
Outcome = AutomationRun.Outcome
MAX_CHAIN = 3
# A "no reply" or "date ahead" moment missed while no worker ran is still caught this late.
CATCH_UP = timedelta(days=1)
PEOPLE_AUTHORS = (Message.Author.USER, Message.Author.ASSISTANT, Message.Author.CAMPAIGN)
WEBHOOK_EVENT = "automation.run"


# --- Matching -----------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive text with single spaces."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def keyword_list(value: str) -> list[str]:
    return [fold(word) for word in (value or "").split(",") if fold(word)]


def keyword_matches(keywords: str, text: str) -> bool:
    """Does ``text`` contain one of the comma-separated ``keywords`` as a word or phrase?"""
    folded = fold(text)
    return any(
        re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", folded)
        for word in keyword_list(keywords)
    )


def active_rules(organization_id: int, trigger: str):
    return Automation.objects.filter(
        organization_id=organization_id, trigger=trigger, is_active=True
    ).select_related("organization", "action_template", "action_drip", "action_webhook")


def has_active_rules(organization_id: int, *triggers: str) -> bool:
    return Automation.objects.filter(
        organization_id=organization_id, trigger__in=triggers, is_active=True
    ).exists()


def _trigger_matches(rule: Automation, context: dict) -> bool:
    if rule.trigger == T.KEYWORD:
        return keyword_matches(rule.keywords, context.get("text", ""))
    if rule.trigger == T.TAG_ADDED:
        added = {fold(tag) for tag in context.get("tags_added", [])}
        return fold(rule.trigger_tag) in added
    if rule.trigger == T.CAMPAIGN_REPLY:
        return rule.trigger_campaign_id in (None, context.get("campaign_id"))
    return True


def conditions_unmet(rule: Automation, contact: Contact, chat: Chat | None, now: datetime) -> str:
    """Why the rule's conditions do not hold for this contact now ("" when they all do)."""
    tags = {fold(t) for t in contact.tags} | {fold(t) for t in (chat.tags if chat else [])}
    for tag in rule.condition_tags:
        if fold(tag) not in tags:
            return _("The contact does not have the tag “%(tag)s”.") % {"tag": tag}
    for tag in rule.condition_exclude_tags:
        if fold(tag) in tags:
            return _("The contact has the tag “%(tag)s”.") % {"tag": tag}
    for name, expected in rule.condition_attributes.items():
        if fold(str(contact.attributes.get(name, ""))) != fold(str(expected)):
            return _("The attribute “%(name)s” is not “%(value)s”.") % {
                "name": name,
                "value": expected,
            }
    if rule.window_start and rule.window_end:
        org_tz = scheduling.zone(rule.organization.time_zone)
        if not scheduling.in_quiet_hours(now, rule.window_start, rule.window_end, org_tz):
            return _("Outside the rule's time window.")
    if rule.number_id and chat is not None and chat.number_id != rule.number_id:
        return _("The chat is on another number.")
    return ""


# --- Firing -------------------------------------------------------------------------------------


def automations_fire(
    *,
    organization_id: int,
    trigger: str,
    contact_id: int,
    chat_id: int | None = None,
    context: dict | None = None,
    key: str = "",
    chain: tuple[int, ...] = (),
) -> list[AutomationRun]:
    """Run every active rule of ``trigger`` that matches the event; returns the runs logged."""
    context = context or {}
    contact = Contact.objects.filter(organization_id=organization_id, pk=contact_id).first()
    if contact is None:
        return []
    chat = None
    if chat_id:
        chat = (
            Chat.objects.select_related("number", "contact")
            .filter(organization_id=organization_id, pk=chat_id)
            .first()
        )
    runs = []
    for rule in active_rules(organization_id, trigger):
        if not _trigger_matches(rule, context):
            continue
        run = automation_run(rule=rule, contact=contact, chat=chat, key=key, chain=chain)
        if run is not None:
            runs.append(run)
    return runs


def _skip(rule, contact, chat, detail: str, key: str = "") -> AutomationRun | None:
    """Log a skipped run; with ``key`` it also claims the event, which then never runs."""
    try:
        with transaction.atomic():
            return AutomationRun.objects.create(
                organization_id=rule.organization_id,
                automation=rule,
                contact=contact,
                chat=chat,
                trigger=rule.trigger,
                key=key[:120],
                outcome=Outcome.SKIPPED,
                detail=detail[:500],
            )
    except IntegrityError:
        return None


def automation_run(
    *,
    rule: Automation,
    contact: Contact,
    chat: Chat | None,
    key: str = "",
    chain=(),
    log_unmet: bool = True,
) -> AutomationRun | None:
    """Check the guards and conditions, claim the run (once per ``key``), run the actions.

    ``log_unmet=False`` (the periodic triggers, which look again every minute) logs no run for
    unmet conditions, so a rule waiting for its time window does not fill the log."""
    now = timezone.now()
    if rule.pk in chain or len(chain) >= MAX_CHAIN:
        return _skip(rule, contact, chat, _("Not run from its own actions (loop prevented)."))
    unmet = conditions_unmet(rule, contact, chat, now)
    if unmet:
        return _skip(rule, contact, chat, unmet) if log_unmet else None
    recent = AutomationRun.objects.filter(
        automation=rule, contact=contact, created_at__gte=now - timedelta(hours=rule.per_hours)
    ).exclude(outcome=Outcome.SKIPPED)
    if recent.count() >= rule.max_runs:
        return _skip(
            rule,
            contact,
            chat,
            _("Already ran %(count)d times for this contact in %(hours)d hours.")
            % {"count": rule.max_runs, "hours": rule.per_hours},
            key=key,
        )
    try:
        with transaction.atomic():
            run = AutomationRun.objects.create(
                organization_id=rule.organization_id,
                automation=rule,
                contact=contact,
                chat=chat,
                trigger=rule.trigger,
                key=key[:120],
                outcome=Outcome.RUNNING,
            )
    except IntegrityError:
        return None  # this event already ran the rule
    results = _run_actions(rule, contact, chat, (*chain, rule.pk))
    failures = [r for r in results if r["ok"] is False]
    done = [r for r in results if r["ok"] is True]
    if not failures:
        outcome = Outcome.SUCCEEDED if done else Outcome.SKIPPED
    else:
        outcome = Outcome.PARTIAL if done else Outcome.FAILED
    run.outcome, run.actions = outcome, results
    run.chat_id = run.chat_id or _last_chat_id(results)
    run.detail = "; ".join(r["detail"] for r in failures)[:500]
    run.save(update_fields=["outcome", "actions", "chat", "detail"])
    return run


def _last_chat_id(results: list[dict]) -> int | None:
    for result in results:
        if result.get("chat"):
            return result["chat"]
    return None


# --- Actions ------------------------------------------------------------------------------------


class _Target:
    """The contact's chat, found or opened only when an action needs one."""

    def __init__(self, rule: Automation, contact: Contact, chat: Chat | None):
        self.rule, self.contact, self._chat = rule, contact, chat

    def chat(self) -> Chat:
        if self._chat is None:
            self._chat = chat_for_automation(rule=self.rule, contact=self.contact)
        return self._chat

    @property
    def chat_id(self):
        return self._chat.pk if self._chat else None


def chat_for_automation(*, rule: Automation, contact: Contact) -> Chat:
    """The contact's latest chat (on the rule's number when set), or a new one."""
    chats = Chat.objects.select_related("number", "contact").filter(contact=contact)
    if rule.number_id:
        chats = chats.filter(number_id=rule.number_id)
    chat = chats.order_by(F("last_message_at").desc(nulls_last=True), "-pk").first()
    if chat is not None:
        return chat
    number = rule.number or (
        WhatsAppNumber.objects.filter(organization_id=rule.organization_id, is_active=True)
        .order_by("pk")
        .first()
    )
    if number is None:
        raise ActionSkipped(_("The organization has no WhatsApp number to write from."))
    chat = inbox_services.chat_for_contact(number=number, contact=contact)
    return Chat.objects.select_related("number", "contact").get(pk=chat.pk)


def _run_actions(rule: Automation, contact: Contact, chat: Chat | None, chain) -> list[dict]:
    target = _Target(rule, contact, chat)
    steps = [
        ("tag", bool(rule.action_tags), lambda: _act_tags(rule, contact, target, chain)),
        ("assign", bool(rule.action_assignee_id), lambda: _act_assign(rule, target)),
        ("ai", bool(rule.action_ai), lambda: _act_ai(rule, target)),
        (
            "message",
            bool(rule.action_text or rule.action_template_id),
            lambda: _act_message(rule, contact, target),
        ),
        ("drip", bool(rule.action_drip_id), lambda: _act_drip(rule, contact)),
        ("webhook", bool(rule.action_webhook_id), lambda: _act_webhook(rule, contact, target)),
    ]
    for key, value in (rule.action_extra or {}).items():  # registered by apps above campaigns
        extra = extra_action(key)
        steps.append(
            (
                key,
                bool(value),
                (lambda extra=extra, value=value: _act_extra(extra, rule, contact, target, value)),
            )
        )
    results = []
    for name, wanted, action in steps:
        if not wanted:
            continue
        try:
            with transaction.atomic():
                detail = action()
            results.append({"action": name, "ok": True, "detail": str(detail)[:300]})
        except ActionSkipped as skipped:
            results.append({"action": name, "ok": None, "detail": str(skipped)[:300]})
        except Exception as error:  # one failing action must not stop the others
            if not isinstance(error, inbox_services.SendRefused | ValueError):
                logger.exception("Automation %s action %s failed", rule.pk, name)
            message = " ".join(getattr(error, "messages", None) or [str(error)])
            results.append({"action": name, "ok": False, "detail": message[:300]})
        results[-1]["chat"] = target.chat_id
    return results


def _act_extra(extra, rule: Automation, contact: Contact, target: _Target, value) -> str:
    if extra is None:
        raise ActionSkipped(_("This action is no longer available."))
    return extra.run(rule=rule, contact=contact, chat=target.chat, value=value)


def _act_tags(rule: Automation, contact: Contact, target: _Target, chain) -> str:
    current = {fold(t) for t in contact.tags}
    added = [t for t in campaign_services.clean_tags(rule.action_tags) if fold(t) not in current]
    if not added:
        raise ActionSkipped(_("The contact already has these tags."))
    inbox_contacts.contact_update(contact=contact, data={"tags_add": added}, source="automation")
    transaction.on_commit(
        lambda: automations_fire(
            organization_id=contact.organization_id,
            trigger=T.TAG_ADDED,
            contact_id=contact.pk,
            chat_id=target.chat_id,
            context={"tags_added": added},
            chain=chain,
        )
    )
    return _("Tagged: %(tags)s") % {"tags": ", ".join(added)}


def _act_assign(rule: Automation, target: _Target) -> str:
    assignee = rule.action_assignee
    if not Membership.objects.filter(user=assignee, organization_id=rule.organization_id).exists():
        raise ValueError(_("%(user)s is no longer a member.") % {"user": assignee.display_name})
    inbox_services.chat_assign(chat=target.chat(), assignee=assignee, actor=None)
    return _("Assigned to %(user)s") % {"user": assignee.display_name}


def _act_ai(rule: Automation, target: _Target) -> str:
    enabled = rule.action_ai == Automation.AI.ON
    inbox_services.chat_set_ai(
        chat=target.chat(),
        enabled=enabled,
        actor=None,
        reason=_("automation “%(name)s”") % {"name": rule.name},
    )
    return _("AI assistant on") if enabled else _("AI assistant off")


def _act_message(rule: Automation, contact: Contact, target: _Target) -> str:
    chat = target.chat()
    message = send_text_or_template(
        chat=chat,
        contact=contact,
        text=rule.action_text,
        template=rule.action_template,
        author_ref=str(rule.code),
    )
    return _("Sent %(kind)s message") % {"kind": message.type}


def _act_drip(rule: Automation, contact: Contact) -> str:
    drips.enrolment_create(program=rule.action_drip, contact=contact, source="automation")
    return _("Enrolled in %(program)s") % {"program": rule.action_drip.name}


def _act_webhook(rule: Automation, contact: Contact, target: _Target) -> str:
    subscription = rule.action_webhook
    if not subscription.is_active:
        raise ValueError(_("The webhook is disabled."))
    payload = {
        "automation": {"code": str(rule.code), "name": rule.name, "trigger": rule.trigger},
        "contact": {
            "code": str(contact.code),
            "phone": contact.phone,
            "name": contact.display_name,
            "tags": contact.tags,
        },
        "chat": {"code": str(target._chat.code)} if target._chat else None,
    }
    delivery = outgoing.delivery_create(
        subscription=subscription, event_type=WEBHOOK_EVENT, payload=payload
    )
    return _("Webhook queued (%(code)s)") % {"code": delivery.code}


# --- Events (called from campaigns.receivers, work done in tasks) -------------------------------


def on_message_received(*, message: Message) -> None:
    if message.author_type != Message.Author.CUSTOMER or message.direction != "in":
        return
    if has_active_rules(message.organization_id, T.KEYWORD, T.CAMPAIGN_REPLY):
        # Runs in the follow-up's outbox transaction: recorded there too, so never lost.
        outbox.add(MESSAGE_RULES, {"message": message.pk}, organization_id=message.organization_id)


MESSAGE_RULES = "campaigns.message_rules"


def message_rules_run(message_id: int) -> list[AutomationRun]:
    message = Message.objects.select_related("chat").filter(pk=message_id).first()
    if message is None or message.author_type != Message.Author.CUSTOMER:
        return []
    common = {
        "organization_id": message.organization_id,
        "contact_id": message.chat.contact_id,
        "chat_id": message.chat_id,
    }
    runs = automations_fire(
        trigger=T.KEYWORD,
        context={"text": message.text},
        key=f"message:{message.pk}",
        **common,
    )
    campaign_id = (
        CampaignRecipient.objects.filter(reply=message)
        .values_list("campaign_id", flat=True)
        .first()
    )
    if campaign_id:
        runs += automations_fire(
            trigger=T.CAMPAIGN_REPLY,
            context={"campaign_id": campaign_id},
            key=f"message:{message.pk}",
            **common,
        )
    return runs


NEW_CONTACTS_PER_TASK = 200


outbox.register(MESSAGE_RULES, lambda payload: message_rules_run(payload["message"]))


def on_contacts_changed(*, contacts: list[Contact], change: str) -> None:
    """New contacts run the "new contact" rules: one task per ``NEW_CONTACTS_PER_TASK``
    contacts of an organization (an import of 50,000 queues 250 tasks, not 50,000)."""
    if change != "created":
        return
    by_organization: dict[int, list[int]] = {}
    for contact in contacts:
        by_organization.setdefault(contact.organization_id, []).append(contact.pk)
    for organization_id, ids in by_organization.items():
        if not has_active_rules(organization_id, T.NEW_CONTACT):
            continue
        for start in range(0, len(ids), NEW_CONTACTS_PER_TASK):
            tasks.enqueue(
                "campaigns.tasks.automations_for_new_contacts",
                ids[start : start + NEW_CONTACTS_PER_TASK],
            )


def on_chat_changed(*, chat: Chat, change: str, actor, data: dict) -> None:
    if change == "status" and data.get("status") == Chat.Status.RESOLVED:
        trigger, tags = T.CHAT_RESOLVED, []
    elif change == "tags" and data.get("added"):
        trigger, tags = T.TAG_ADDED, list(data["added"])
    else:
        return
    if has_active_rules(chat.organization_id, trigger):
        tasks.enqueue(
            "campaigns.tasks.automations_for_event", str(trigger), chat.contact_id, chat.pk, tags
        )


def event_rules_run(trigger: str, contact_id: int, chat_id: int | None, tags: list) -> list:
    organization_id = (
        Contact.objects.filter(pk=contact_id).values_list("organization_id", flat=True).first()
    )
    if organization_id is None:
        return []
    key = f"contact:{contact_id}" if trigger == T.NEW_CONTACT else ""
    return automations_fire(
        organization_id=organization_id,
        trigger=trigger,
        contact_id=contact_id,
        chat_id=chat_id,
        context={"tags_added": tags},
        key=key,
    )


# --- Time-based triggers ------------------------------------------------------------------------


def no_reply_due(rule: Automation, now: datetime) -> list[Message]:
    """Per chat, the latest message from a person, assistant or campaign sent between
    ``hours`` (+ catch-up) and ``hours`` ago that the customer has not answered."""
    until = now - timedelta(hours=rule.hours)
    later_inbound = Message.objects.filter(
        chat=OuterRef("chat"),
        direction=Message.Direction.INBOUND,
        timestamp__gt=OuterRef("timestamp"),
    )
    later_outbound = Message.objects.filter(
        chat=OuterRef("chat"),
        direction=Message.Direction.OUTBOUND,
        author_type__in=PEOPLE_AUTHORS,
        timestamp__gt=OuterRef("timestamp"),
    )
    candidates = (
        Message.objects.filter(
            organization_id=rule.organization_id,
            direction=Message.Direction.OUTBOUND,
            author_type__in=PEOPLE_AUTHORS,
            timestamp__lte=until,
            timestamp__gt=until - CATCH_UP,
        )
        .exclude(status=Message.Status.FAILED)
        .filter(~Exists(later_inbound), ~Exists(later_outbound))
        .select_related("chat")
    )
    if rule.number_id:
        candidates = candidates.filter(number_id=rule.number_id)
    return list(candidates[:500])


def parse_moment(value, tz) -> datetime | None:
    """An attribute's date ("2026-03-10") or date and time ("2026-03-10 14:30", ISO 8601)."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def date_ahead_due(rule: Automation, now: datetime) -> list[tuple[Contact, datetime]]:
    """Contacts whose ``date_attribute`` lies within the next ``hours`` (not yet past)."""
    due = []
    contacts = Contact.objects.filter(
        organization_id=rule.organization_id, attributes__has_key=rule.date_attribute
    ).exclude(opt_in=Contact.OptIn.OPTED_OUT)
    org_zone = rule.organization.time_zone
    for contact in contacts.iterator(chunk_size=500):
        tz = scheduling.zone(contact.time_zone, org_zone)
        moment = parse_moment(contact.attributes.get(rule.date_attribute), tz)
        if moment is not None and moment - timedelta(hours=rule.hours) <= now < moment:
            due.append((contact, moment))
    return due


def automations_tick(now: datetime | None = None) -> dict:
    """Periodic: fire the time-based rules that are due (each moment once, by its run key)."""
    now = now or timezone.now()
    fired = {"no_reply": 0, "date_ahead": 0}
    rules = Automation.objects.filter(
        is_active=True, trigger__in=(T.NO_REPLY, T.DATE_AHEAD)
    ).select_related("organization", "action_template", "action_drip", "action_webhook")
    for rule in rules:
        if rule.trigger == T.NO_REPLY:
            for message in no_reply_due(rule, now):
                if _fire_once(
                    rule, message.chat.contact_id, message.chat, f"no_reply:{message.pk}"
                ):
                    fired["no_reply"] += 1
        elif rule.date_attribute:
            for contact, moment in date_ahead_due(rule, now):
                key = f"date:{rule.date_attribute}:{moment.isoformat()}"
                if _fire_once(rule, contact.pk, None, key):
                    fired["date_ahead"] += 1
    return fired


def _fire_once(rule: Automation, contact_id: int, chat: Chat | None, key: str) -> bool:
    if AutomationRun.objects.filter(automation=rule, key=key).exists():
        return False
    contact = Contact.objects.get(pk=contact_id)
    run = automation_run(rule=rule, contact=contact, chat=chat, key=key, log_unmet=False)
    return run is not None and run.outcome != Outcome.SKIPPED
