"""Reminders: sent at the right time with Confirm / Reschedule / Cancel, exactly once across a
worker killed mid-send, never to opted-out contacts; "Reschedule" re-enters the booking menus."""

from datetime import timedelta
from unittest import mock

from django.utils import timezone

from appointments import reminders, services
from appointments.models import Appointment, Reminder
from inbox.models import Chat, Contact, Message
from integrations.models import MessageTemplate
from integrations.whatsapp import payloads
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.assistants.helpers import AssistantTestCase

WA_ID = "5511955554444"


class ReminderTests(AssistantTestCase):
    def setUp(self):
        super().setUp()
        self.agenda = make_agenda(self.org)
        first = self.receive("oi", wa_id=WA_ID)
        self.chat = Chat.objects.select_related("contact").get(pk=first.chat_id)
        self.day = next_weekday(2, after_days=3)
        self.appointment = services.appointment_book(
            service=self.agenda["cleaning"],
            professional=self.agenda["ana"],
            starts_at=at(self.day, 9),
            channel="staff",
            contact=self.chat.contact,
            chat=self.chat,
        )

    def reminders_sent(self):
        return list(
            Message.objects.filter(chat=self.chat, author_ref="booking", direction="out").order_by(
                "id"
            )
        )

    def send_due(self, hours_before):
        with self.captureOnCommitCallbacks(execute=True):
            return reminders.reminders_due_send(
                now=self.appointment.starts_at - timedelta(hours=hours_before)
            )

    def tap(self, reply_id, kind="button"):
        build = payloads.build_button_reply if kind == "button" else payloads.build_list_reply
        return self.receive(
            "", wa_id=WA_ID, message_type="interactive", content=build(reply_id=reply_id, title="x")
        )

    def test_booking_schedules_24h_and_2h_reminders_sent_at_their_time(self):
        due = sorted(
            Reminder.objects.filter(appointment=self.appointment).values_list("hours", flat=True)
        )
        self.assertEqual(due, [2, 24])
        self.assertEqual(self.send_due(25), 0)  # the clock is not there yet
        self.assertEqual(self.send_due(23), 1)
        (sent,) = self.reminders_sent()
        buttons = sent.content["interactive"]["action"]["buttons"]
        self.assertEqual(
            [b["reply"]["title"] for b in buttons], ["Confirm", "Reschedule", "Cancel visit"]
        )
        self.assertEqual(buttons[0]["reply"]["id"], f"appt:{self.appointment.code}:confirm")
        self.assertIn("Limpeza with Dra. Ana Lima", sent.text)
        self.assertEqual(self.send_due(23), 0)  # never twice
        self.assertEqual(self.send_due(1), 1)

    def test_confirm_and_cancel_buttons(self):
        self.send_due(23)
        self.tap(f"appt:{self.appointment.code}:confirm")
        self.appointment.refresh_from_db()
        self.assertEqual(self.appointment.status, "confirmed")
        self.assertIn("is confirmed", self.reminders_sent()[-1].text)
        self.tap(f"appt:{self.appointment.code}:cancel")
        self.appointment.refresh_from_db()
        self.assertEqual(self.appointment.status, "cancelled")
        self.assertEqual(self.send_due(1), 0)  # no reminder for a cancelled appointment
        self.assertEqual(
            Reminder.objects.get(appointment=self.appointment, hours=2).status, "skipped"
        )

    def test_reschedule_re_enters_the_booking_menus_and_moves_the_appointment(self):
        self.send_due(23)
        self.tap(f"appt:{self.appointment.code}:reschedule")
        days = self.reminders_sent()[-1].content["interactive"]["action"]["sections"][0]["rows"]
        self.tap(days[-2]["id"], kind="list")  # the last day (the last row is the waiting list)
        times = self.reminders_sent()[-1].content["interactive"]["action"]["sections"][0]["rows"]
        self.tap(times[2]["id"], kind="list")
        self.tap("book:yes")
        self.appointment.refresh_from_db()
        self.assertEqual(Appointment.objects.count(), 1)
        self.assertEqual(self.appointment.status, "booked")
        self.assertEqual(self.appointment.reschedule_count, 1)
        self.assertNotEqual(self.appointment.starts_at, at(self.day, 9))
        self.assertIn("✅ Booked", [m.text for m in self.reminders_sent()][-2])
        # New reminders for the new time.
        new = Reminder.objects.filter(appointment=self.appointment, status="pending")
        self.assertEqual(
            {r.due_at for r in new},
            {self.appointment.starts_at - timedelta(hours=h) for h in (24, 2)},
        )

    def test_a_worker_killed_before_commit_leaves_the_reminder_pending_and_it_goes_once(self):
        real_send = reminders.inbox_services.message_send

        def send_then_die(**kwargs):
            real_send(**kwargs)
            raise SystemExit("worker killed")

        patch = mock.patch.object(reminders.inbox_services, "message_send", send_then_die)
        with patch, self.assertRaises(SystemExit):
            self.send_due(23)
        self.assertEqual(self.reminders_sent(), [])
        self.assertEqual(
            Reminder.objects.get(appointment=self.appointment, hours=24).status, "pending"
        )
        self.assertEqual(self.send_due(23), 1)
        self.assertEqual(self.send_due(23), 0)
        self.assertEqual(len(self.reminders_sent()), 1)
        self.assertEqual(self.reminders_sent()[0].status, "sent")

    def test_opted_out_contacts_get_no_reminder(self):
        Contact.objects.filter(pk=self.chat.contact_id).update(opt_in=Contact.OptIn.OPTED_OUT)
        self.assertEqual(self.send_due(23), 0)
        self.assertEqual(self.reminders_sent(), [])
        reminder = Reminder.objects.get(appointment=self.appointment, hours=24)
        self.assertEqual((reminder.status, reminder.detail), ("skipped", "contact opted out"))

    def test_a_closed_window_sends_the_approved_template_with_the_button_payloads(self):
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=timezone.now() - timedelta(hours=1)
        )
        self.assertEqual(self.send_due(23), 0)
        reminder = Reminder.objects.get(appointment=self.appointment, hours=24)
        self.assertEqual(reminder.status, "failed")
        self.assertIn("no reminder template", reminder.detail)

        MessageTemplate.objects.create(
            organization=self.org,
            number=self.number,
            name="lembrete_consulta",
            language="pt_BR",
            status="APPROVED",
            category="UTILITY",
            components=[
                {"type": "BODY", "text": "Olá {{1}}! Lembrete: {{2}} em {{3}}."},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Confirmar"},
                        {"type": "QUICK_REPLY", "text": "Remarcar"},
                        {"type": "QUICK_REPLY", "text": "Cancelar consulta"},
                    ],
                },
            ],
        )
        from appointments.models import AgendaSettings

        agenda = AgendaSettings.objects.get(organization=self.org)
        agenda.reminder_template = "lembrete_consulta"
        agenda.save()
        self.assertEqual(self.send_due(1), 1)
        (sent,) = self.reminders_sent()
        self.assertEqual(sent.type, "template")
        components = sent.content["template"]["components"]
        self.assertEqual(components[0]["parameters"][1]["text"], "Limpeza")
        self.assertEqual(
            [c["parameters"][0]["payload"] for c in components[1:]],
            [f"appt:{self.appointment.code}:{a}" for a in ("confirm", "reschedule", "cancel")],
        )
        # The customer taps the template's cancel quick reply: the router gives it to us. (A
        # button titled exactly like an opt-out keyword, "Cancelar", would opt them out.)
        tap = self.receive(
            "",
            wa_id=WA_ID,
            message_type="button",
            content=payloads.build_template_button(
                payload=f"appt:{self.appointment.code}:cancel", text="Cancelar consulta"
            ),
        )
        tap.refresh_from_db()
        self.assertEqual(tap.handled_by, "booking")
        self.appointment.refresh_from_db()
        self.assertEqual(self.appointment.status, "cancelled")
