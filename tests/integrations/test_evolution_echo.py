"""A WhatsApp Web send held as "unknown" (Evolution's answer timed out, the message may have
gone out) is reconciled by its echo: the message the provider reports our own number sent
(``messages.upsert`` with ``fromMe``, or ``send.message``) records the wamid, marks it sent, and
the held send is never sent again. Against the Evolution emulator, whose answer is made late
while the send itself goes out."""

from unittest import mock

from django.test import override_settings

from inbox import services as inbox_services
from inbox.models import Message
from integrations.providers import evolution
from tests.integrations.test_evolution import CUSTOMER, EvolutionTestCase


class HeldSendEchoTests(EvolutionTestCase):
    def setUp(self):
        super().setUp()
        self.pair()
        self.chat = self.customer_sends(text="Bom dia").chat
        self.instance = self.app.instances[self.web.evolution_instance]

    def held_send(self, text: str) -> Message:
        """An agent's send whose answer comes after the client's read timeout."""
        self.instance.slow_answers = 1.5
        with (
            mock.patch.object(evolution, "TIMEOUT", (5, 0.3)),
            self.captureOnCommitCallbacks(execute=True),
        ):
            message = inbox_services.message_send(
                chat=self.chat, message_type="text", content={"body": text}, author_user=self.agent
            )
        self.instance.slow_answers = 0
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.PENDING)
        self.assertEqual(message.error_title, inbox_services.UNKNOWN)  # held, not resent
        self.assertIsNone(message.wamid)
        self.assertEqual(len(self.instance.sent), 1)  # but it did go out
        return message

    def resend_after_the_window(self, message: Message) -> None:
        with override_settings(INBOX_SEND_RECONCILE_SECONDS=0):
            inbox_services.message_deliver(message.pk)

    def test_the_phones_echo_marks_the_held_send_sent_and_it_is_never_resent(self):
        message = self.held_send("Confirmado às 15h")
        went_out = self.instance.sent[0]["record"]["key"]["id"]
        # The phone reports the message our number sent (messages.upsert, fromMe).
        self.app.inbound(
            self.instance,
            {"from": CUSTOMER, "from_me": True, "id": went_out, "text": "Confirmado às 15h"},
        )
        upserts = self.take("messages.upsert")
        self.forward(upserts[0])
        message.refresh_from_db()
        self.assertEqual(message.wamid, went_out)
        self.assertEqual(message.status, Message.Status.SENT)
        self.assertEqual(message.error_title, "")
        self.resend_after_the_window(message)
        self.assertEqual(len(self.instance.sent), 1)  # not sent twice
        self.assertEqual(
            Message.objects.filter(chat=self.chat, text="Confirmado às 15h").count(), 1
        )

    def test_the_servers_send_echo_reconciles_it_too(self):
        message = self.held_send("Até amanhã")
        (echo,) = self.take("send.message")
        self.forward(echo)
        message.refresh_from_db()
        self.assertEqual(message.wamid, self.instance.sent[0]["record"]["key"]["id"])
        self.assertEqual(message.status, Message.Status.SENT)
        self.resend_after_the_window(message)
        self.assertEqual(len(self.instance.sent), 1)

    def test_without_an_echo_the_held_send_goes_out_again_after_the_window(self):
        message = self.held_send("Pode vir às 16h")
        self.resend_after_the_window(message)
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.SENT)
        self.assertEqual(len(self.instance.sent), 2)  # no evidence: sent again (at least once)
