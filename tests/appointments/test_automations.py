"""Appointment events are automation triggers (registered in campaigns' trigger registry)."""

from appointments import services
from campaigns.models import Automation, AutomationRun
from inbox.models import Contact
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import BaseTestCase


class AppointmentAutomationTests(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.agenda = make_agenda(self.org)
        self.contact = Contact.objects.create(
            organization=self.org, wa_id="5511955550000", phone="+5511955550000", name="Rita"
        )

    def rule(self, trigger: str, tag: str) -> Automation:
        return Automation.objects.create(
            organization=self.org, name=f"tag {tag}", trigger=trigger, action_tags=[tag]
        )

    def book(self, hour=9):
        with self.captureOnCommitCallbacks(execute=True):
            return services.appointment_book(
                service=self.agenda["cleaning"],
                professional=self.agenda["ana"],
                starts_at=at(next_weekday(2), hour),
                channel="staff",
                contact=self.contact,
            )

    def test_a_booking_and_a_cancellation_run_their_rules_once(self):
        self.rule("appt_created", "agendado")
        self.rule("appt_cancelled", "desmarcou")
        appointment = self.book()
        self.contact.refresh_from_db()
        self.assertEqual(self.contact.tags, ["agendado"])
        with self.captureOnCommitCallbacks(execute=True):
            services.appointment_cancel(appointment=appointment)
        self.contact.refresh_from_db()
        self.assertEqual(self.contact.tags, ["agendado", "desmarcou"])
        self.assertEqual(AutomationRun.objects.filter(contact=self.contact).count(), 2)

    def test_the_automation_form_offers_the_appointment_triggers(self):
        from campaigns.automation_forms import AutomationForm

        choices = dict(AutomationForm(organization=self.org).fields["trigger"].choices)
        self.assertEqual(str(choices["appt_created"]), "Appointment booked")
        self.assertIn("appt_no_show", choices)
