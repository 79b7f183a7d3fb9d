"""Assistant events as outgoing webhook events for integrators (``assistant.handoff``,
``analysis.completed``).

Connected from ``assistants/receivers.py``. Like ``inbox/outgoing_events.py``: receivers run after
the change commits and only queue deliveries; payloads are built only when someone subscribes,
and every chat payload carries the chat's own ``sequence``.
"""

from django.dispatch import receiver

from assistants import signals
from inbox.outgoing_events import _chat_ref, _time
from integrations import outgoing


def _assistant_ref(assistant) -> dict | None:
    if assistant is None:
        return None
    return {"id": str(assistant.code), "name": assistant.name}


def analysis_payload(analysis) -> dict:
    return {
        "analysis": {
            "id": str(analysis.code),
            "summary": analysis.summary,
            "intent": analysis.intent,
            "sentiment": analysis.sentiment,
            "lead_score": analysis.lead_score,
            "lead_score_reason": analysis.lead_score_reason,
            "next_step": analysis.next_step,
            "follow_up_on": analysis.follow_up_on.isoformat() if analysis.follow_up_on else None,
            "offline": analysis.offline,
            "created_at": _time(analysis.created_at),
        },
        "assistant": _assistant_ref(analysis.assistant),
        "chat": _chat_ref(analysis.chat_id),
    }


@receiver(signals.handoff, dispatch_uid="outgoing-assistant-handoff")
def assistant_handoff(sender, *, chat, assistant, reason, **kwargs):
    outgoing.event_publish(
        organization_id=chat.organization_id,
        event_type="assistant.handoff",
        data=lambda: {
            "assistant": _assistant_ref(assistant),
            "reason": str(reason),
            "chat": _chat_ref(chat.pk),
        },
    )


@receiver(signals.analysis_completed, dispatch_uid="outgoing-analysis-completed")
def analysis_completed(sender, *, analysis, **kwargs):
    outgoing.event_publish(
        organization_id=analysis.organization_id,
        event_type="analysis.completed",
        data=lambda: analysis_payload(analysis),
    )
