"""The conversation router's "flow" handler (order 40) and the flows' own subscriptions.

Accepts a customer message when the chat has a run waiting for an answer (the flow holds the
chat), or when a published flow's trigger matches: a keyword, a pattern, a new contact's first
message, any message outside opening hours, or a button whose payload is ``flow:<flow id>``
(campaign or template buttons). One run per chat: a trigger never interrupts a running flow.
"""

import re
from datetime import timedelta

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import hours
from campaigns.models import register_action
from flows import runtime, services
from flows.models import Flow, FlowRun
from flows.node_types import message_answer
from inbox import router
from inbox import signals as inbox_signals
from inbox.models import Message

BUTTON_PREFIX = "flow:"
OUTSIDE_HOURS = "outside opening hours"
OUTSIDE_HOURS_REPEAT = timedelta(hours=12)  # an after-hours flow answers a chat once per night


def _triggers(organization_id: int) -> list[dict]:
    def load():
        found = []
        for flow_id, code, definition in Flow.objects.filter(
            organization_id=organization_id, is_active=True, published__isnull=False
        ).values_list("pk", "code", "published__definition"):
            start = next((n for n in definition["nodes"] if n["type"] == "start"), None)
            props = (start or {}).get("props") or {}
            keywords = {
                k.strip().lower() for k in str(props.get("keywords") or "").split(",") if k.strip()
            }
            pattern = None
            if props.get("regex"):
                try:
                    pattern = re.compile(props["regex"], re.IGNORECASE)
                except re.error:
                    pattern = None
            found.append(
                {
                    "id": flow_id,
                    "code": str(code),
                    "keywords": keywords,
                    "pattern": pattern,
                    "new_contact": bool(props.get("new_contact")),
                    "outside_hours": bool(props.get("outside_hours")),
                }
            )
        return found

    return services.triggers_memo.get(organization_id, load)


def trigger_match(inbound: router.Inbound) -> tuple[int, str] | None:
    """(flow id, why) of the first published flow this message starts, if any."""
    flows = _triggers(inbound.chat.organization_id)
    if not flows:
        return None
    reply_id, text = message_answer(inbound.message)
    if reply_id.startswith(BUTTON_PREFIX):
        code = reply_id[len(BUTTON_PREFIX) :].split(":", 1)[0]
        for flow in flows:
            if flow["code"] == code:
                return flow["id"], "button"
    lowered = text.strip().lower()
    for flow in flows:
        if lowered and lowered in flow["keywords"]:
            return flow["id"], f"keyword {lowered[:40]}"
        if lowered and flow["pattern"] is not None and flow["pattern"].search(text[:1000]):
            return flow["id"], "pattern"
    if inbound.new_chat:
        for flow in flows:
            if flow["new_contact"]:
                return flow["id"], "new contact"
    if any(flow["outside_hours"] for flow in flows) and not hours.is_open(
        inbound.chat.organization
    ):
        for flow in flows:
            if flow["outside_hours"]:
                return flow["id"], OUTSIDE_HOURS
    return None


def _accepts(inbound: router.Inbound) -> bool:
    if inbound.message.type in (Message.Type.REACTION, Message.Type.UNSUPPORTED):
        return False
    if inbound.held_by == runtime.HANDLER:
        # The flow holds the chat: waiting for this answer, or (an AI step waiting for the
        # model) not yet ready for it; then the message waits on the run, in order.
        held = (
            FlowRun.objects.filter(chat_id=inbound.chat.pk, status__in=FlowRun.ACTIVE)
            .values_list("pk", "status")
            .first()
        )
        if held is None:
            return False
        key = "flow_run" if held[1] == FlowRun.Status.WAITING_INPUT else "flow_queue"
        inbound.notes[key] = held[0]
        return True
    match = trigger_match(inbound)
    if match is None:
        return False
    active = (
        FlowRun.objects.filter(chat_id=inbound.chat.pk, status__in=FlowRun.ACTIVE)
        .values_list("pk", "status")
        .first()
    )
    # A run waiting for an answer whose hold a person released is abandoned: a trigger replaces it.
    if active is not None and active[1] != FlowRun.Status.WAITING_INPUT:
        return False
    if (
        match[1] == OUTSIDE_HOURS
        and FlowRun.objects.filter(
            chat_id=inbound.chat.pk,
            flow_id=match[0],
            started_at__gte=timezone.now() - OUTSIDE_HOURS_REPEAT,
        ).exists()
    ):
        return False  # it answered this chat's earlier message tonight: do not repeat it
    inbound.notes["flow_start"] = match
    inbound.notes["flow_abandoned"] = active[0] if active else None
    return True


def _handle(inbound: router.Inbound) -> None:
    if inbound.notes.get("flow_queue"):
        runtime.input_queue(run_id=inbound.notes["flow_queue"], message=inbound.message)
        return
    if inbound.notes.get("flow_run"):
        run = FlowRun.objects.get(pk=inbound.notes["flow_run"])
        runtime.input_receive(run=run, message=inbound.message)
        return
    flow_id, why = inbound.notes["flow_start"]
    if inbound.notes.get("flow_abandoned"):
        run = FlowRun.objects.select_related("chat").get(pk=inbound.notes["flow_abandoned"])
        runtime.run_cancel(run=run, reason=str(_("replaced by another flow")))
    flow = Flow.objects.select_related("published").get(pk=flow_id)
    _reply, text = message_answer(inbound.message)
    runtime.run_start(
        flow=flow, chat=inbound.chat, trigger=why, variables={"last_text": text[:1000]}
    )


router.register(
    router.Handler(
        key=runtime.HANDLER,
        order=40,
        label=_("flow"),
        accepts=_accepts,
        handle=_handle,
    )
)


@receiver([post_save, post_delete], sender=Flow, dispatch_uid="flows-triggers-memo")
def on_flow_saved(sender, instance, **kwargs):
    services.flows_changed(instance.organization_id)


from flows import outgoing_events  # noqa: F401,E402  (webhook events for integrators)


@receiver(inbox_signals.contact_erasing, dispatch_uid="flows-contact-erasing")
def on_contact_erasing(sender, *, contact, **kwargs):
    """LGPD erasure, in its transaction: answers a flow captured (emails, names, free text)
    go; the runs stay for the flow's funnel figures."""
    FlowRun.objects.filter(chat__contact=contact).update(variables={})


# --- Automation action "start a flow" (campaigns' action registry) -------------------------------


def _startable_flows(organization_id: int) -> list[tuple[str, str]]:
    return [
        (str(code), name)
        for code, name in Flow.objects.filter(
            organization_id=organization_id, is_active=True, published__isnull=False
        )
        .order_by("name")
        .values_list("code", "name")
    ]


def _start_flow_action(*, rule, contact, chat, value) -> str:
    """An automation rule starts a published flow in the contact's chat."""
    from campaigns.messaging import ActionSkipped

    flow = Flow.objects.filter(organization_id=rule.organization_id, code=value).first()
    if flow is None:
        raise ActionSkipped(_("The flow was deleted."))
    try:
        runtime.run_start(flow=flow, chat=chat(), trigger=f"automation {rule.name}"[:64])
    except runtime.FlowNotStartable as refused:
        raise ActionSkipped(str(refused)) from None
    return _("Flow %(flow)s started") % {"flow": flow.name}


register_action("start_flow", _("Start a flow"), choices=_startable_flows, run=_start_flow_action)
