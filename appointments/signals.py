"""One place that says an appointment changed: live calendar events (organization group and
the professional's own socket), and the ``appointment_changed`` signal that reminders,
outgoing webhook events and automations subscribe to. Everything runs after commit."""

from django.db import transaction
from django.dispatch import Signal

from kernel import realtime

# op: created | rescheduled | cancelled | confirmed | no_show
appointment_changed = Signal()


def changed(appointment, op: str) -> None:
    from inbox.consumers import organization_group, user_group

    event = {
        "type": "live.event",
        "data": {
            "type": "appointment.changed",
            "op": op,
            "appointment": str(appointment.code),
            "professional": str(appointment.professional.code),
        },
    }
    realtime.publish_on_commit(organization_group(appointment.organization), event)
    if appointment.professional.user_id:
        realtime.publish_on_commit(user_group(appointment.professional.user), event)
    transaction.on_commit(
        lambda: appointment_changed.send(sender=type(appointment), appointment=appointment, op=op)
    )
