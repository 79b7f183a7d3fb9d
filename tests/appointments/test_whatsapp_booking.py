"""Booking over WhatsApp through list menus (router handler "booking"), end to end through the
real inbound service and the sandbox."""

from appointments import booking
from appointments.models import Appointment, BookingSession
from inbox.models import Chat, Message
from integrations.whatsapp import payloads
from tests.appointments.helpers import make_agenda
from tests.assistants.helpers import AssistantTestCase

WA_ID = "5511988887777"


class BookingTestCase(AssistantTestCase):
    def setUp(self):
        super().setUp()
        self.agenda = make_agenda(self.org)

    def say(self, text):
        return self.receive(text, wa_id=WA_ID)

    def tap(self, reply_id, title="x", kind="list"):
        build = payloads.build_list_reply if kind == "list" else payloads.build_button_reply
        return self.receive(
            "",
            wa_id=WA_ID,
            message_type="interactive",
            content=build(reply_id=reply_id, title=title),
        )

    def last_sent(self, chat_id):
        return (
            Message.objects.filter(chat_id=chat_id, direction="out")
            .order_by("-timestamp", "-id")
            .first()
        )

    def rows(self, message):
        interactive = message.content["interactive"]
        self.assertEqual(interactive["type"], "list")
        return [row for section in interactive["action"]["sections"] for row in section["rows"]]


class WhatsAppBookingTests(BookingTestCase):
    def test_a_customer_books_limpeza_through_the_list_menus(self):
        first = self.say("Agendar")
        first.refresh_from_db()
        self.assertEqual(first.handled_by, "booking")
        chat = Chat.objects.get(pk=first.chat_id)
        self.assertEqual(chat.held_by, "booking")
        services_list = self.rows(self.last_sent(chat.pk))
        self.assertEqual(
            [row["title"] for row in services_list], ["Avaliação de implante", "Limpeza"]
        )
        cleaning = next(row for row in services_list if row["title"] == "Limpeza")
        self.tap(cleaning["id"], "Limpeza")
        days = self.rows(self.last_sent(chat.pk))
        self.assertLessEqual(len(days), 10)
        self.assertTrue(all(len(row["title"]) <= 24 for row in days))
        # The second day offered is a whole working day (18 times); the first may be what is
        # left of today, ten times or fewer from late morning on, with no "Later times".
        self.tap(days[1]["id"])
        times = self.rows(self.last_sent(chat.pk))
        self.assertEqual(len(times), 10)  # nine times and "Later times"
        self.assertEqual(times[-1]["title"], "Later times")
        self.tap(times[-1]["id"])
        later = self.rows(self.last_sent(chat.pk))
        self.assertNotEqual(later[0]["id"], times[0]["id"])
        # Something unexpected gets a polite re-ask, not a booking.
        self.say("hmm, qual o preço?")
        self.assertIn("please choose one of the options", self.last_sent(chat.pk).text)
        self.tap(later[0]["id"], later[0]["title"])
        confirm = self.last_sent(chat.pk).content["interactive"]
        self.assertEqual(confirm["type"], "button")
        self.assertIn("Limpeza with", confirm["body"]["text"])
        self.tap("book:yes", "Confirm", kind="button")
        appointment = Appointment.objects.get(contact=chat.contact)
        self.assertEqual(appointment.channel, "bot")
        self.assertEqual(appointment.service, self.agenda["cleaning"])
        sent = list(Message.objects.filter(chat=chat, direction="out").order_by("id"))
        self.assertIn("✅ Booked: Limpeza", sent[-2].text)
        self.assertEqual(sent[-1].type, "document")
        self.assertTrue(sent[-1].content["document"]["filename"].endswith(".ics"))
        self.assertEqual(sent[-1].status, "sent")
        chat.refresh_from_db()
        self.assertEqual(chat.held_by, "")
        self.assertFalse(BookingSession.objects.filter(chat=chat).exists())

    def test_the_slot_taken_meanwhile_gets_a_polite_reply_and_new_times(self):
        self.say("marcar")
        chat = Chat.objects.get(contact__wa_id=WA_ID)
        self.tap(f"book:svc:{self.agenda['implant'].code}")
        day = self.rows(self.last_sent(chat.pk))[0]
        self.tap(day["id"])
        slot = self.rows(self.last_sent(chat.pk))[0]
        self.tap(slot["id"])
        session = BookingSession.objects.get(chat=chat)
        from appointments import services

        services.appointment_book(
            service=self.agenda["implant"],
            professional=session.professional,
            starts_at=session.starts_at,
            channel="staff",
        )
        self.tap("book:yes", kind="button")
        reply = self.last_sent(chat.pk)
        self.assertIn("just taken", reply.content["interactive"]["body"]["text"])
        self.assertEqual(Appointment.objects.count(), 1)

    def test_a_forged_or_stale_time_gets_a_polite_reply_and_no_row(self):
        """Menu ids come back from the customer's phone: an old menu's time (now in the past),
        one outside the hours or of someone who does not do the service is refused politely."""
        from tests.appointments.helpers import at, next_weekday

        self.say("marcar")
        chat = Chat.objects.get(contact__wa_id=WA_ID)
        self.tap(f"book:svc:{self.agenda['implant'].code}")
        day = next_weekday(1)
        bruno, ana = self.agenda["bruno"], self.agenda["ana"]
        self.tap(f"book:day:{day.isoformat()}")
        for professional, when in (
            (bruno, at(day, 10).replace(year=2020)),  # past
            (bruno, at(day, 22)),  # outside the hours
            (ana, at(day, 10)),  # Ana does not do implants
        ):
            self.tap(f"book:slot:{professional.pk}:{int(when.timestamp())}")
            self.tap("book:yes", kind="button")
            reply = self.last_sent(chat.pk)
            self.assertEqual(reply.direction, "out")
            self.assertNotIn("Booked", reply.text or "")
        self.assertEqual(Appointment.objects.count(), 0)
        self.assertTrue(Chat.objects.filter(pk=chat.pk, held_by="booking").exists())

    def test_sair_leaves_and_releases_the_chat(self):
        self.say("agendar")
        chat = Chat.objects.get(contact__wa_id=WA_ID)
        exit_message = self.say("desistir")
        exit_message.refresh_from_db()
        self.assertEqual(exit_message.handled_by, "booking")
        chat.refresh_from_db()
        self.assertEqual(chat.held_by, "")
        self.assertIn("Booking cancelled", self.last_sent(chat.pk).text)
        after = self.say("obrigado")
        after.refresh_from_db()
        self.assertEqual(after.handled_by, "")

    def test_an_ordinary_message_is_not_a_booking(self):
        message = self.say("Olá, bom dia")
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "")
        self.assertIn("agendar", booking.keywords_of(self.org.pk))


class PortugueseBookingTests(BookingTestCase):
    def setUp(self):
        super().setUp()
        self.org.language = "pt-br"
        self.org.save(update_fields=["language"])

    def test_the_menus_speak_the_clinics_language_and_never_say_an_opt_out_word(self):
        self.say("agendar")
        chat = Chat.objects.get(contact__wa_id=WA_ID)
        self.assertIn("Qual serviço você quer agendar?", self.last_sent(chat.pk).text)
        self.tap(f"book:svc:{self.agenda['cleaning'].code}")
        day = self.rows(self.last_sent(chat.pk))[0]
        self.assertIn("horários livres", day["description"])
        self.tap(day["id"])
        self.tap(self.rows(self.last_sent(chat.pk))[0]["id"])
        buttons = self.last_sent(chat.pk).content["interactive"]["action"]["buttons"]
        titles = [b["reply"]["title"] for b in buttons]
        self.assertEqual(titles, ["Confirmar", "Outro horário", "Agora não"])
        # Tapping "Agora não" ends the booking; it is not an opt-out.
        tap = self.tap("book:no", "Agora não", kind="button")
        tap.refresh_from_db()
        self.assertEqual(tap.handled_by, "booking")
        self.assertNotEqual(
            chat.contact.__class__.objects.get(pk=chat.contact_id).opt_in, "opted_out"
        )


class WaitingListTests(BookingTestCase):
    def test_a_cancellation_is_offered_to_the_waiting_list_and_the_first_tap_books_it(self):
        from appointments import services as booking_services
        from appointments.models import WaitlistEntry
        from tests.appointments.helpers import at, next_weekday

        taken = booking_services.appointment_book(
            service=self.agenda["implant"],
            professional=self.agenda["bruno"],
            starts_at=at(next_weekday(2), 10),
            channel="staff",
            customer_name="Outra pessoa",
        )
        self.say("agendar")
        chat = Chat.objects.get(contact__wa_id=WA_ID)
        self.tap(f"book:svc:{self.agenda['implant'].code}")
        days = self.rows(self.last_sent(chat.pk))
        self.assertEqual(days[-1]["id"], "book:wait")
        self.assertLessEqual(len(days), 10)
        self.tap("book:wait", "None suits me")
        self.assertIn("waiting list", self.last_sent(chat.pk).text)
        entry = WaitlistEntry.objects.get(contact=chat.contact)
        self.assertEqual(entry.status, "waiting")

        with self.captureOnCommitCallbacks(execute=True):
            booking_services.appointment_cancel(appointment=taken)
        offer = self.last_sent(chat.pk).content["interactive"]
        self.assertIn("A time just freed up", offer["body"]["text"])
        book_it = offer["action"]["buttons"][0]["reply"]["id"]
        self.tap(book_it, "Book it", kind="button")
        mine = Appointment.objects.get(contact=chat.contact)
        self.assertEqual(mine.starts_at, taken.starts_at)
        entry.refresh_from_db()
        self.assertEqual(entry.status, "booked")
        # A second tap (or another customer's) finds the time taken, politely.
        self.tap(book_it, "Book it", kind="button")
        self.assertIn("no longer valid", self.last_sent(chat.pk).text)
        self.assertEqual(Appointment.objects.filter(contact=chat.contact).count(), 1)

    def _waiting(self):
        from appointments import services as booking_services
        from tests.appointments.helpers import at, next_weekday

        taken = booking_services.appointment_book(
            service=self.agenda["implant"],
            professional=self.agenda["bruno"],
            starts_at=at(next_weekday(2), 10),
            channel="staff",
            customer_name="Outra pessoa",
        )
        self.say("agendar")
        chat = Chat.objects.get(contact__wa_id=WA_ID)
        self.tap(f"book:svc:{self.agenda['implant'].code}")
        self.tap("book:wait", "None suits me")
        return taken, chat

    def test_a_closed_window_gets_the_offer_as_the_approved_template(self):
        from datetime import timedelta

        from django.utils import timezone

        from appointments import services as booking_services
        from appointments.models import AgendaSettings, WaitlistEntry
        from integrations.models import MessageTemplate

        taken, chat = self._waiting()
        Chat.objects.filter(pk=chat.pk).update(
            window_expires_at=timezone.now() - timedelta(hours=1)
        )
        before = Message.objects.filter(chat=chat, direction="out").count()
        # No waiting-list template yet: nothing goes out (a free-form message would be refused
        # by WhatsApp), the entry keeps waiting and the log says why.
        with (
            self.assertLogs("appointments.waitlist", "INFO") as logs,
            self.captureOnCommitCallbacks(execute=True),
        ):
            booking_services.appointment_cancel(appointment=taken)
        self.assertIn("no waiting-list template", logs.output[0])
        self.assertEqual(Message.objects.filter(chat=chat, direction="out").count(), before)

        MessageTemplate.objects.create(
            organization=self.org,
            number=chat.number,
            name="vaga_liberada",
            language="pt_BR",
            status="APPROVED",
            category="UTILITY",
            components=[
                {"type": "BODY", "text": "Olá {{1}}! Abriu um horário: {{2}} em {{3}} com {{4}}."},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Quero"},
                        {"type": "QUICK_REPLY", "text": "Não, obrigado"},
                    ],
                },
            ],
        )
        AgendaSettings.objects.filter(organization=self.org).update(
            waitlist_template="vaga_liberada"
        )
        from appointments import availability, waitlist

        availability.rules_changed(self.org.pk)
        self.assertEqual(waitlist.waitlist_offer(appointment=taken), 1)
        sent = self.last_sent(chat.pk)
        self.assertEqual(sent.type, "template")
        components = sent.content["template"]["components"]
        self.assertEqual(components[0]["parameters"][1]["text"], "Avaliação de implante")
        self.assertEqual(components[0]["parameters"][3]["text"], "Dr. Bruno Reis")
        book_it = components[1]["parameters"][0]["payload"]
        self.assertTrue(book_it.startswith("wait:"))
        self.assertTrue(components[2]["parameters"][0]["payload"].endswith(":no"))
        # The customer taps the template's quick reply: the time is theirs.
        tap = self.receive(
            "",
            wa_id=WA_ID,
            message_type="button",
            content=payloads.build_template_button(payload=book_it, text="Quero"),
        )
        tap.refresh_from_db()
        self.assertEqual(tap.handled_by, "booking")
        mine = Appointment.objects.get(contact=chat.contact)
        self.assertEqual(mine.starts_at, taken.starts_at)
        self.assertEqual(WaitlistEntry.objects.get(contact=chat.contact).status, "booked")

    def test_opted_out_customers_get_no_offer(self):
        from appointments import services as booking_services
        from inbox.models import Contact

        taken, chat = self._waiting()
        Contact.objects.filter(pk=chat.contact_id).update(opt_in=Contact.OptIn.OPTED_OUT)
        before = Message.objects.filter(chat=chat, direction="out").count()
        with self.captureOnCommitCallbacks(execute=True):
            booking_services.appointment_cancel(appointment=taken)
        self.assertEqual(Message.objects.filter(chat=chat, direction="out").count(), before)


class StaffBookingFromTheChatTests(BookingTestCase):
    def test_staff_books_from_the_contact_panel_and_the_customer_gets_the_confirmation(self):
        from django.urls import reverse

        from tests.appointments.helpers import next_weekday

        first = self.say("oi, queria marcar uma limpeza")
        chat = Chat.objects.get(pk=first.chat_id)
        self.login(self.operator)
        page = self.client.get(reverse("chat_detail", args=[chat.code]))
        self.assertContains(page, f"/agenda/new/?phone={WA_ID}")
        form = self.client.get(reverse("appointment_create"), {"phone": WA_ID})
        self.assertContains(form, f'value="{WA_ID}"')
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("appointment_create"),
                {
                    "service": self.agenda["cleaning"].code,
                    "professional": self.agenda["ana"].code,
                    "date": next_weekday(3).isoformat(),
                    "time": "15:30",
                    "phone": WA_ID,
                    "notify": "on",
                },
                HTTP_HX_REQUEST="true",
            )
        self.assertContains(response, "The confirmation went to the customer on WhatsApp.")
        appointment = Appointment.objects.get(contact=chat.contact)
        self.assertEqual(appointment.channel, "staff")
        sent = list(Message.objects.filter(chat=chat, direction="out").order_by("id"))
        self.assertIn("✅ Booked: Limpeza with Dra. Ana Lima", sent[-2].text)
        self.assertEqual(sent[-1].type, "document")


class OtherTimeZoneTests(BookingTestCase):
    def test_a_customer_in_another_zone_is_told_the_times_are_the_clinics(self):
        from inbox.models import Contact

        self.say("agendar")
        chat = Chat.objects.get(contact__wa_id=WA_ID)
        Contact.objects.filter(pk=chat.contact_id).update(time_zone="Europe/Lisbon")
        self.tap(f"book:svc:{self.agenda['cleaning'].code}")
        self.tap(self.rows(self.last_sent(chat.pk))[0]["id"])
        body = self.last_sent(chat.pk).content["interactive"]["body"]["text"]
        self.assertIn("Times are the clinic's, America/Sao_Paulo", body)


class StartFromAnotherAppTests(BookingTestCase):
    def test_booking_start_is_the_entry_a_flow_step_calls(self):
        first = self.say("oi")
        chat = Chat.objects.select_related("contact", "organization").get(pk=first.chat_id)
        with self.captureOnCommitCallbacks(execute=True):
            booking.start(chat, service=self.agenda["cleaning"])
        chat.refresh_from_db()
        self.assertEqual(chat.held_by, "booking")
        days = self.rows(self.last_sent(chat.pk))
        self.assertTrue(days[0]["id"].startswith("book:day:"))
        reply = self.tap(days[0]["id"])
        reply.refresh_from_db()
        self.assertEqual(reply.handled_by, "booking")
