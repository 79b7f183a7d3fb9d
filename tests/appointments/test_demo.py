"""The demo clinic gets services, two professionals with agendas and a week of appointments."""

from io import StringIO

from django.core.management import call_command

from appointments.models import Appointment, Professional, Service
from assistants.models import Assistant
from tests.base import BaseTestCase


class DemoTests(BaseTestCase):
    def test_the_demo_clinic_has_an_agenda_and_its_assistant_can_book(self):
        call_command("demo", stdout=StringIO())
        call_command("assistant_demo", stdout=StringIO())
        call_command("appointments_demo", stdout=StringIO())
        call_command("appointments_demo", stdout=StringIO())  # idempotent
        org_filter = {"organization__slug": "clinica-sorriso"}
        self.assertEqual(Professional.objects.filter(**org_filter).count(), 2)
        self.assertTrue(
            Professional.objects.filter(**org_filter, user__email="ana@sorriso.demo").exists()
        )
        self.assertIn(
            "Limpeza", Service.objects.filter(**org_filter).values_list("name", flat=True)
        )
        appointments = Appointment.objects.filter(**org_filter)
        self.assertGreaterEqual(appointments.count(), 15)
        self.assertTrue(appointments.filter(status="booked").exists())
        self.assertIn(
            "book_appointment", Assistant.objects.get(**org_filter, name="Sofia").instructions
        )
