"""The flow builder's "book" step: a flow hands the chat to appointments' booking menus (the
router's starter registry; flows and appointments never import each other), at the chosen
service's days, and the customer books through them."""

from django.urls import reverse

from appointments.models import Appointment
from flows.models import FlowRun
from inbox.models import Chat
from tests.appointments.helpers import make_agenda
from tests.flows.helpers import FlowTestCase
from tests.flows.test_actions import chain


class BookNodeTests(FlowTestCase):
    def test_a_flow_step_opens_the_booking_menus_and_the_customer_books(self):
        agenda = make_agenda(self.org)
        self.published_flow(
            chain(
                {"id": "hi", "type": "message", "props": {"text": "Vamos agendar sua limpeza."}},
                {"id": "book", "type": "book", "props": {"service": str(agenda["cleaning"].code)}},
            )
        )
        first = self.receive("go")
        chat = Chat.objects.get(pk=first.chat_id)
        self.assertEqual(chat.held_by, "booking")
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual((run.status, run.outcome), ("completed", "handed to the booking menus"))
        days = self.sent(chat)[-1].content["interactive"]["action"]["sections"][0]["rows"]
        self.assertTrue(days[0]["id"].startswith("book:day:"))

        def tap_list(row_id):
            from integrations.whatsapp import payloads

            return self.receive(
                message_type="interactive",
                content=payloads.build_list_reply(reply_id=row_id, title="x"),
            )

        tap_list(days[0]["id"])
        times = self.sent(chat)[-1].content["interactive"]["action"]["sections"][0]["rows"]
        tap_list(times[0]["id"])
        self.tap("book:yes", "Confirm")
        appointment = Appointment.objects.get(contact=chat.contact)
        self.assertEqual((appointment.service, appointment.channel), (agenda["cleaning"], "bot"))

    def test_the_editor_offers_the_bookable_services(self):
        agenda = make_agenda(self.org)
        flow = self.published_flow()
        self.login(self.admin)
        page = self.client.get(reverse("flow_edit", args=[flow.code]))
        self.assertContains(page, "Book an appointment")
        self.assertContains(page, str(agenda["cleaning"].code))
