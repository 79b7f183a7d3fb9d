"""Appointments: services catalogue, professionals' agendas, booking over WhatsApp (router
handler "booking"), reminders and the staff calendar. Nothing below this app imports it: it
plugs in through the router, the assistant tool registry and outgoing webhook events."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AppointmentsConfig(AppConfig):
    name = "appointments"
    verbose_name = _("Appointments")

    def ready(self):
        from appointments import receivers  # noqa: F401
        from kernel.tasks import register_periodic

        register_periodic("appointments.tasks.reminders_tick", 60)
