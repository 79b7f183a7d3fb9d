"""An "AI on" chat books in free text through the assistant's tools (real stubbed model)."""

from appointments.models import Appointment
from assistants import tools
from inbox.models import Message
from tests.appointments.helpers import make_agenda, next_weekday
from tests.assistants.helpers import AssistantTestCase


class AssistantBookingTests(AssistantTestCase):
    def setUp(self):
        super().setUp()
        self.agenda = make_agenda(self.org)
        self.day = next_weekday(1)

    def test_the_assistant_books_in_free_text(self):
        chat = self.ai_chat()
        start = f"{self.day.isoformat()}T09:00"
        self.stub.script(
            {
                "tool_calls": [
                    {
                        "name": "find_slots",
                        "arguments": {"service": "limpeza", "from_date": self.day.isoformat()},
                    }
                ]
            },
            {
                "tool_calls": [
                    {
                        "name": "book_appointment",
                        "arguments": {"service": "Limpeza", "start": start},
                    }
                ]
            },
            {"content": "Pronto, agendado para terça às 9h!"},
        )
        self.receive("Quero fazer uma limpeza terça de manhã")
        appointment = Appointment.objects.get(contact=chat.contact)
        self.assertEqual(appointment.channel, "ai")
        self.assertEqual(appointment.service, self.agenda["cleaning"])
        tool_results = [m for m in self.stub.chat_requests()[1]["messages"] if m["role"] == "tool"]
        self.assertIn(f'"start": "{start}"', tool_results[0]["content"])
        self.assertTrue(
            Message.objects.filter(chat=chat, text="Pronto, agendado para terça às 9h!").exists()
        )

    def test_refusals_come_back_as_errors_for_the_model(self):
        chat = self.ai_chat()
        context = tools.ToolContext(chat=chat, contact=chat.contact)
        result = tools.execute(
            context, "book_appointment", {"service": "Limpeza", "start": f"{self.day}T12:10"}
        )
        self.assertIn("not free", result["error"])
        result = tools.execute(
            context, "book_appointment", {"service": "Botox", "start": f"{self.day}T09:00"}
        )
        self.assertIn("unknown or ambiguous service", result["error"])
        result = tools.execute(
            context, "book_appointment", {"service": "Limpeza", "start": "amanhã"}
        )
        self.assertIn("unreadable time", result["error"])
        booked = tools.execute(
            context, "book_appointment", {"service": "Limpeza", "start": f"{self.day}T10:00"}
        )
        mine = tools.execute(context, "my_appointments", {})
        self.assertEqual(
            [a["appointment_id"] for a in mine["appointments"]], [booked["appointment_id"]]
        )
        moved = tools.execute(
            context,
            "reschedule_appointment",
            {"appointment_id": booked["appointment_id"], "start": f"{self.day}T15:00"},
        )
        self.assertEqual(moved["start"], f"{self.day}T15:00")
        cancelled = tools.execute(
            context, "cancel_appointment", {"appointment_id": booked["appointment_id"]}
        )
        self.assertEqual(cancelled["status"], "cancelled")
        self.assertEqual(Appointment.objects.get().status, "cancelled")
        # Another customer's appointment is not theirs to touch.
        other = self.ai_chat(wa_id="5511900009999")
        other_context = tools.ToolContext(chat=other, contact=other.contact)
        result = tools.execute(
            other_context, "cancel_appointment", {"appointment_id": booked["appointment_id"]}
        )
        self.assertIn("no such appointment", result["error"])

    def test_past_outside_hours_wrong_zone_and_wrong_professional_are_refused(self):
        chat = self.ai_chat()
        context = tools.ToolContext(chat=chat, contact=chat.contact)
        cases = [
            ({"service": "Limpeza", "start": "2020-03-03T09:00"}, "past"),
            ({"service": "Limpeza", "start": f"{self.day}T21:00"}, "not free"),
            (
                {"service": "Avaliação de implante", "start": f"{self.day}T10:00",
                 "professional": "Ana"},
                "does not perform",
            ),
            ({"service": "Limpeza", "start": f"{self.day}T09:00+99:00"}, "unreadable time"),
        ]  # fmt: skip
        for arguments, reason in cases:
            result = tools.execute(context, "book_appointment", arguments)
            self.assertIn(reason, result.get("error", ""), (arguments, result))
        self.assertEqual(Appointment.objects.count(), 0)
