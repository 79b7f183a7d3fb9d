"""The .ics of one appointment (confirmation attachment) and of a professional's agenda
(subscription feed)."""

from django.utils.translation import gettext as _

from appointments import availability, ics
from appointments.models import Appointment


def filename(appointment: Appointment) -> str:
    local = appointment.starts_at.astimezone(availability.zone(appointment.organization))
    return f"{_('appointment')}-{local:%Y%m%d-%H%M}.ics"


def appointment_ics(appointment: Appointment) -> str:
    agenda = availability.settings_for(appointment.organization)
    summary = f"{appointment.service.name} · {appointment.organization.name}"
    event = ics.event_lines(
        appointment,
        summary=summary,
        location=agenda.address,
        description=_("With %(professional)s") % {"professional": appointment.professional.name},
    )
    return ics.calendar([event])


def professional_ics(professional, appointments) -> str:
    events = [
        ics.event_lines(
            appointment,
            summary=f"{appointment.service.name} · {appointment.display_customer}",
            description=appointment.notes,
        )
        for appointment in appointments
    ]
    return ics.calendar(events, name=professional.name)
