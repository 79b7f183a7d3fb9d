"""Outbound: every send type goes message_send → message_deliver → the sandbox over real HTTP,
and the sandbox's signed status webhooks move it to read; the 24-hour window, template checks,
and retryable versus final errors."""

from collections import Counter
from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Message
from integrations import services
from integrations.errors import ServerError
from integrations.models import MessageTemplate
from integrations.providers import provider_for
from integrations.whatsapp.sandbox.samples import png
from tests.integrations.test_webhook_inbound import SandboxTestCase

REMINDER_PARAMS = [
    {
        "type": "body",
        "parameters": [
            {"type": "text", "text": "Carla"},
            {"type": "text", "text": "Dra. Ana"},
            {"type": "text", "text": "12/12"},
            {"type": "text", "text": "14:30"},
        ],
    }
]


class ChannelTestCase(SandboxTestCase):
    def setUp(self):
        super().setUp()
        self.chat = self.other_chat
        self.chat.window_expires_at = timezone.now() + timedelta(hours=3)
        self.chat.save()
        self.customer = self.chat.contact.wa_id

    def send(self, message_type: str, content: dict, **kwargs) -> Message:
        with self.captureOnCommitCallbacks(execute=True):
            message = inbox_services.message_send(
                chat=self.chat,
                message_type=message_type,
                content=content,
                author_user=self.admin,
                **kwargs,
            )
        message.refresh_from_db()
        return message

    def outbound(self):
        return self.sandbox.app.messages(self.number.phone_number_id, direction="outbound")

    def sandbox_got(self, message: Message) -> dict:
        """The request body the sandbox received for ``message``."""
        log = self.sandbox.app.messages(self.number.phone_number_id, direction="outbound")
        return next(e for e in log if e["wamid"] == message.wamid)["message"]

    def statuses_until_read(self, message: Message) -> Message:
        """Forward the sandbox's status webhooks for ``message`` until it reports read."""
        forwarded = set()

        def has_read(items):
            return any(message.wamid.encode() in r.body and b'"read"' in r.body for r in items)

        for index, received in enumerate(self.receiver.wait_for(has_read)):
            if message.wamid.encode() in received.body and index not in forwarded:
                forwarded.add(index)
                self.forward(received)
        message.refresh_from_db()
        return message

    def assert_delivered_and_read(self, message: Message) -> dict:
        self.assertEqual(message.status, Message.Status.SENT, message.error_details)
        self.assertTrue(message.wamid.startswith("wamid."))
        body = self.sandbox_got(message)
        message = self.statuses_until_read(message)
        self.assertEqual(message.status, Message.Status.READ)
        self.assertIsNotNone(message.delivered_at)
        self.assertIsNotNone(message.read_at)
        return body


class SendTypesTests(ChannelTestCase):
    def test_it_sends_text_with_preview(self):
        message = self.send("text", {"body": "Olá! https://porfin.example", "preview_url": True})
        body = self.assert_delivered_and_read(message)
        self.assertEqual(body["to"], self.customer)
        self.assertEqual(body["text"], {"body": "Olá! https://porfin.example", "preview_url": True})

    def test_it_sends_an_image_by_link_and_by_uploaded_id(self):
        by_link = self.send("image", {"link": "https://cdn.example/sorriso.png", "caption": "Nós"})
        self.assertEqual(
            self.assert_delivered_and_read(by_link)["image"]["link"],
            "https://cdn.example/sorriso.png",
        )
        media_id = provider_for(self.number).upload_media(
            data=png(), mime_type="image/png", filename="a.png"
        )
        by_id = self.send("image", {"id": media_id, "caption": "Seu sorriso"})
        body = self.assert_delivered_and_read(by_id)
        self.assertEqual(body["image"], {"id": media_id, "caption": "Seu sorriso"})
        self.assertEqual(by_id.text, "Seu sorriso")

    def test_it_sends_a_document(self):
        content = {
            "link": "https://cdn.example/preparo.pdf",
            "filename": "preparo.pdf",
            "caption": "Preparo",
        }
        self.assertEqual(
            self.assert_delivered_and_read(self.send("document", content))["document"], content
        )

    def test_it_sends_location_and_contacts(self):
        location = {"latitude": -23.56, "longitude": -46.65, "name": "Clínica", "address": "Av. X"}
        self.assertEqual(
            self.assert_delivered_and_read(self.send("location", location))["location"], location
        )
        cards = [
            {
                "name": {"formatted_name": "Dra. Ana", "first_name": "Ana"},
                "phones": [{"phone": "+5511988887777", "type": "CELL"}],
            }
        ]
        self.assertEqual(
            self.assert_delivered_and_read(self.send("contacts", cards))["contacts"], cards
        )

    def test_it_sends_interactive_buttons_and_lists(self):
        buttons = {
            "type": "button",
            "body": {"text": "Confirma a consulta?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Sim"}},
                    {"type": "reply", "reply": {"id": "no", "title": "Não"}},
                ]
            },
        }
        self.assertEqual(
            self.assert_delivered_and_read(self.send("interactive", buttons))["interactive"],
            buttons,
        )
        listing = {
            "type": "list",
            "body": {"text": "Escolha um horário"},
            "action": {
                "button": "Horários",
                "sections": [
                    {
                        "title": "Manhã",
                        "rows": [{"id": "9", "title": "9h"}, {"id": "10", "title": "10h"}],
                    }
                ],
            },
        }
        self.assertEqual(
            self.assert_delivered_and_read(self.send("interactive", listing))["interactive"],
            listing,
        )

    def test_it_sends_a_reaction_and_a_reply(self):
        target = Message.objects.filter(chat=self.chat, direction="in").first()
        self.sandbox.app.send_inbound(
            self.number.phone_number_id, {"from": self.customer, "text": "oi"}
        )
        inbound_wamid = self.sandbox.app.messages(self.number.phone_number_id, direction="inbound")[
            -1
        ]["wamid"]
        Message.objects.filter(pk=target.pk).update(wamid=inbound_wamid)
        target.refresh_from_db()
        reaction = self.send("reaction", {"message_id": inbound_wamid, "emoji": "❤️"})
        self.assertEqual(
            self.assert_delivered_and_read(reaction)["reaction"],
            {"message_id": inbound_wamid, "emoji": "❤️"},
        )
        reply = self.send("text", {"body": "Respondendo"}, reply_to=target)
        body = self.assert_delivered_and_read(reply)
        self.assertEqual(body["context"], {"message_id": inbound_wamid})
        self.assertEqual(reply.reply_to, target)


class WindowAndTemplateTests(ChannelTestCase):
    def setUp(self):
        super().setUp()
        services.templates_sync(number=self.number)
        self.chat.window_expires_at = timezone.now() - timedelta(minutes=1)
        self.chat.save()

    def test_it_refuses_free_text_outside_the_window_with_a_clear_reason(self):
        with self.assertRaisesMessage(
            inbox_services.SendRefused, "24-hour customer service window is closed"
        ):
            self.send("text", {"body": "Oi, sumida!"})
        self.assertFalse(Message.objects.filter(chat=self.chat, direction="out").exists())

    def test_it_sends_an_approved_template_outside_the_window(self):
        template = MessageTemplate.objects.get(number=self.number, name="appointment_reminder")
        self.assertEqual(template.status, "APPROVED")
        content = {
            "name": "appointment_reminder",
            "language": {"code": "pt_BR"},
            "components": REMINDER_PARAMS,
        }
        body = self.assert_delivered_and_read(self.send("template", content))
        self.assertEqual(body["template"]["name"], "appointment_reminder")

    def test_it_checks_the_parameter_count_against_the_stored_template(self):
        content = {
            "name": "appointment_reminder",
            "language": {"code": "pt_BR"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Carla"}]}],
        }
        with self.assertRaisesMessage(inbox_services.SendRefused, "expected number of params (4)"):
            self.send("template", content)
        self.assertEqual(
            self.sandbox.app.messages(self.number.phone_number_id, direction="outbound"), []
        )

    def test_it_refuses_unknown_and_unapproved_templates(self):
        with self.assertRaisesMessage(inbox_services.SendRefused, "no template"):
            self.send("template", {"name": "nope", "language": {"code": "pt_BR"}})
        MessageTemplate.objects.filter(number=self.number, name="appointment_reminder").update(
            status="PAUSED"
        )
        content = {
            "name": "appointment_reminder",
            "language": {"code": "pt_BR"},
            "components": REMINDER_PARAMS,
        }
        with self.assertRaisesMessage(inbox_services.SendRefused, "only approved templates"):
            self.send("template", content)


class SendErrorTests(ChannelTestCase):
    def inject(self, **failure):
        self.sandbox.app.inject_failure(self.number.phone_number_id, **failure)

    def test_a_throttled_send_is_retried_later_not_failed(self):
        self.inject(code=130429, retry_after=60)
        with self.assertLogs("inbox.services", "WARNING") as logs:
            message = self.send("text", {"body": "Oi"})
        self.assertIn("retrying in", "\n".join(logs.output))
        self.assertEqual(message.status, Message.Status.SENT)
        delivery = message.content["delivery"]
        self.assertEqual(delivery["attempts"], 1)
        self.assertEqual(delivery["last_error"]["code"], 130429)
        self.assertGreaterEqual(delivery["retry_in"], 60)

    def test_a_server_error_without_evidence_is_sent_again_once_the_window_passed(self):
        # A 503 that Meta never acted on: no status webhook comes, so after the window it is
        # sent again, once.
        self.inject(code=131000, http_status=503, retry_after=30)
        with override_settings(INBOX_SEND_RECONCILE_SECONDS=0):
            message = self.send("text", {"body": "Oi"})
        self.assertEqual(message.status, Message.Status.SENT)
        self.assertEqual(message.content["delivery"]["last_error"]["kind"], "ServerError")
        self.assertEqual(len(self.outbound()), 1)

    def test_a_send_still_throttled_after_every_attempt_fails_with_the_reason(self):
        self.inject(code=130429, retry_after=60, count=20)
        message = self.send("text", {"body": "Oi"})
        self.assertEqual(message.status, Message.Status.FAILED)
        self.assertEqual(message.content["delivery"]["attempts"], inbox_services.SEND_MAX_ATTEMPTS)
        self.assertEqual(message.error_code, 130429)

    def test_a_final_error_marks_the_message_failed_with_whatsapps_reason(self):
        self.inject(code=131026, details="Message undeliverable: not a WhatsApp user.")
        message = self.send("text", {"body": "Oi"})
        self.assertEqual(message.status, Message.Status.FAILED)
        self.assertEqual(message.error_code, 131026)
        self.assertTrue(message.error_title)
        self.assertIn("not a WhatsApp user", message.error_details)
        self.assertEqual(message.content["delivery"]["attempts"], 1)
        self.assertIsNone(message.wamid)

    def test_a_failed_status_webhook_after_acceptance_shows_the_reason(self):
        self.inject(code=131047, mode="status")
        message = self.send("text", {"body": "Oi"})
        self.assertEqual(message.status, Message.Status.SENT)

        def has_failed(items):
            return any(b'"failed"' in r.body for r in items)

        for received in self.receiver.wait_for(has_failed):
            self.forward(received)
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.FAILED)
        self.assertEqual(message.error_code, 131047)
        self.assertIn("24 hours", message.error_details)


class AmbiguousSendTests(ChannelTestCase):
    """A send WhatsApp may have taken although the answer was a 5xx or never came is held as
    unknown: its status webhooks (echoing the send's callback data) prove it went out, and only
    a send with no evidence after the window is sent again. The customer never gets it twice."""

    def inject(self, **failure):
        self.sandbox.app.inject_failure(self.number.phone_number_id, **failure)

    def forward_statuses(self, count: int) -> None:
        """Forward the sandbox's status webhooks about this test's sends once ``count`` came."""
        wamids = [m["wamid"].encode() for m in self.outbound()]

        def ours(items):
            return [r for r in items if any(w in r.body for w in wamids)]

        for received in ours(self.receiver.wait_for(lambda items: len(ours(items)) >= count)):
            self.forward(received)

    def test_a_send_accepted_then_answered_with_a_5xx_is_proved_by_its_status_not_resent(self):
        self.inject(code=131000, http_status=500, mode="accept_fail")
        message = self.send("text", {"body": "Chegou?"})
        self.assertEqual((message.status, message.error_title), ("pending", "unknown"))
        self.assertIsNone(message.wamid)
        [sent] = self.outbound()
        self.assertEqual(sent["callback_data"], f"m:{message.code}")

        self.forward_statuses(3)  # sent, delivered, read
        message.refresh_from_db()
        self.assertEqual(message.wamid, sent["wamid"])
        self.assertEqual(message.status, Message.Status.READ)
        self.assertIsNotNone(message.sent_at)
        # The window passing later changes nothing: it is never sent again.
        with override_settings(INBOX_SEND_RECONCILE_SECONDS=0):
            inbox_services.message_deliver(message.pk)
            inbox_services.interrupted_sends_sweep()
        self.assertEqual(len(self.outbound()), 1)

    def test_a_send_accepted_whose_answer_never_came_is_proved_by_its_status(self):
        self.inject(mode="accept_timeout", hang_seconds=1.5)
        with override_settings(WHATSAPP_READ_TIMEOUT_SECONDS=0.3):
            message = self.send("text", {"body": "Chegou?"})
        self.assertEqual((message.status, message.error_title), ("pending", "unknown"))
        self.assertEqual(message.content["delivery"]["last_error"]["title"], "No response")
        self.forward_statuses(3)
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.READ)
        with override_settings(INBOX_SEND_RECONCILE_SECONDS=0):
            inbox_services.message_deliver(message.pk)
        self.assertEqual([m["wamid"] for m in self.outbound()], [message.wamid])

    def test_the_status_can_come_before_the_failed_answer(self):
        # Meta's webhook is faster than its 5xx: the message is recorded as sent by its status,
        # and the late error leaves it alone.
        self.inject(code=131000, http_status=500, mode="accept_fail")
        self.sandbox.app.register_number(
            {"phone_number_id": self.number.phone_number_id, "delays": {"sent": 0.0}},
            verify=False,
        )
        message = self.send("text", {"body": "Oi"})
        self.forward_statuses(1)
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.SENT)
        inbox_services._send_failed(message, ServerError("late", permanent=False, ambiguous=True))
        message.refresh_from_db()
        self.assertEqual((message.status, message.error_title), ("sent", ""))

    def test_a_burst_of_ambiguous_5xx_doubles_nothing(self):
        count = 12
        self.inject(code=131000, http_status=500, mode="accept_fail", count=count)
        self.inject(code=1, http_status=500, count=count)  # then refused, never taken
        messages = [self.send("text", {"body": f"Mensagem {i}"}) for i in range(count * 2)]
        self.assertEqual(Counter(m.error_title for m in messages), {"unknown": count * 2})
        self.forward_statuses(count * 3)  # the taken ones' sent, delivered, read
        with override_settings(INBOX_SEND_RECONCILE_SECONDS=0):
            for message in messages:  # the window passes: the ones without evidence again
                with self.captureOnCommitCallbacks(execute=True):
                    inbox_services.message_deliver(message.pk)
        log = self.outbound()
        self.assertEqual(len(log), count * 2)
        self.assertEqual(
            Counter(m["callback_data"] for m in log),
            {f"m:{m.code}": 1 for m in messages},
        )
        self.assertEqual(
            set(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("wamid")),
            {(m["wamid"],) for m in log},
        )
