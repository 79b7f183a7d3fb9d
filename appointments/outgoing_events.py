"""Appointment events for integrators' webhooks (``appointment.created|rescheduled|cancelled|
confirmed|no_show``). Receivers run after the change commits and only queue deliveries; the
payload is built only when someone subscribes."""

from django.dispatch import receiver

from appointments.models import Appointment
from appointments.signals import appointment_changed
from integrations import outgoing


def appointment_payload(appointment_id: int) -> dict:
    appointment = Appointment.objects.select_related("service", "professional", "contact").get(
        pk=appointment_id
    )

    def iso(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "appointment": {
            "id": str(appointment.code),
            "status": appointment.status,
            "channel": appointment.channel,
            "start": iso(appointment.starts_at),
            "end": iso(appointment.ends_at),
            "service": {"id": str(appointment.service.code), "name": appointment.service.name},
            "professional": {
                "id": str(appointment.professional.code),
                "name": appointment.professional.name,
            },
            "contact": {"id": str(appointment.contact.code), "phone": appointment.contact.phone}
            if appointment.contact
            else None,
            "customer_name": appointment.customer_name,
        }
    }


@receiver(appointment_changed, dispatch_uid="outgoing-appointment-changed")
def on_appointment_changed(sender, *, appointment, op, **kwargs):
    outgoing.event_publish(
        organization_id=appointment.organization_id,
        event_type=f"appointment.{op}",
        data=lambda: appointment_payload(appointment.pk),
    )
