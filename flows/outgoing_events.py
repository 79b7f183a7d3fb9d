"""Flow events for integrators: ``flow.completed`` and ``flow.handoff`` (after commit)."""

from django.dispatch import receiver

from flows import signals
from flows.models import FlowRun
from integrations import outgoing

EVENTS = {FlowRun.Status.COMPLETED: "flow.completed", FlowRun.Status.HANDED_OFF: "flow.handoff"}


def run_payload(run_id: int) -> dict:
    run = FlowRun.objects.select_related("flow", "version", "chat__contact").get(pk=run_id)
    return {
        "flow": {"id": str(run.flow.code), "name": run.flow.name, "version": run.version.number},
        "run": {
            "id": str(run.code),
            "status": run.status,
            "trigger": run.trigger,
            "outcome": run.outcome,
            "node": run.node,
            "variables": run.variables,
            "started_at": run.started_at.isoformat(),
            "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        },
        "chat": {"id": str(run.chat.code)},
        "contact": {"id": str(run.chat.contact.code), "phone": run.chat.contact.phone},
    }


@receiver(signals.run_ended, dispatch_uid="outgoing-flow-run-ended")
def run_ended(sender, *, run_id, status, **kwargs):
    event_type = EVENTS.get(status)
    if event_type is None:
        return
    organization_id = FlowRun.objects.values_list("organization_id", flat=True).get(pk=run_id)
    outgoing.event_publish(
        organization_id=organization_id, event_type=event_type, data=lambda: run_payload(run_id)
    )
