"""Every inbound message type of the Cloud API reference, as the sandbox (a real HTTP server)
sends it through the real signed webhook, ends up as the right message in the inbox; media is
downloaded from the sandbox and stored with its sha256, within the type and size limits."""

import base64
import hashlib
import os

from django.test import override_settings

from inbox import signals as inbox_signals
from inbox.models import Chat, Media, Message
from integrations import services
from integrations.whatsapp.sandbox import SandboxApp, SandboxServer
from integrations.whatsapp.sandbox.samples import png
from tests.base import BaseTestCase
from tests.integrations.conftest import CUSTOMER_WA_ID, WebhookReceiver, webhook_path


class SandboxTestCase(BaseTestCase):
    """A real sandbox server on a free port; its signed webhooks are captured by a local
    receiver and handed to the test client (the same bytes and signature Meta would send)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.receiver = WebhookReceiver().start()
        cls.sandbox = SandboxServer(
            SandboxApp(webhook_timeout=2.0, webhook_retry_delays=(0.05,), delivery_workers=4)
        ).start()
        origin = cls.receiver.url.removesuffix("/webhook")
        cls._sandbox_settings = override_settings(
            SANDBOX_URL=cls.sandbox.url, SANDBOX_WEBHOOK_BASE_URL=origin
        )
        cls._sandbox_settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._sandbox_settings.disable()
        cls.sandbox.stop()
        cls.receiver.stop()
        super().tearDownClass()

    def setUp(self):
        self.number.waba_id = "1000"
        self.number.save()
        services._registered_with_sandbox.clear()
        self.sandbox.app.reset()
        self.receiver.requests.clear()
        services.sandbox_register(self.number)
        self.sandbox.app.register_number(
            {
                "phone_number_id": self.number.phone_number_id,
                "delays": {"sent": 0.01, "delivered": 0.02, "read": 0.03},
            },
            verify=False,
        )

    def forward(self, received):
        """POST one webhook the sandbox sent to our view, running its tasks inline."""
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                webhook_path(self.number),
                data=received.body,
                content_type="application/json",
                headers={"X-Hub-Signature-256": received.headers["x-hub-signature-256"]},
            )
        self.assertEqual(response.status_code, 200)
        return response

    def customer_sends(self, **spec) -> Message | None:
        seen = len(self.receiver.requests)
        result = services.sandbox_customer_send(
            number=self.number, spec={"from": CUSTOMER_WA_ID, "profile_name": "Carla", **spec}
        )
        self.forward(self.receiver.wait_count(seen + 1)[seen])
        return Message.objects.filter(number=self.number, wamid=result["wamid"]).first()


class InboundTypesTests(SandboxTestCase):
    def test_it_stores_text_with_reply_context_and_referral(self):
        first = self.customer_sends(type="text", text="Quero marcar uma limpeza")
        self.assertEqual((first.type, first.text), ("text", "Quero marcar uma limpeza"))
        referral = {"source_type": "ad", "source_id": "123", "headline": "Sorriso"}
        reply = self.customer_sends(
            type="text", text="Pode ser amanhã", context_id=first.wamid, referral=referral
        )
        self.assertEqual(reply.reply_to, first)
        self.assertEqual(reply.content["referral"]["source_id"], "123")
        chat = Chat.objects.get(contact__wa_id=CUSTOMER_WA_ID, number=self.number)
        self.assertEqual(chat.unread_count, 2)
        self.assertEqual(chat.contact.profile_name, "Carla")

    def test_it_downloads_every_media_type_with_its_sha256(self):
        # The assistants app transcribes voice notes on message_received; without an AI key its
        # task raises in inline mode. That is not what this test is about.
        inbox_signals.message_received.disconnect(dispatch_uid="assistants-message-received")
        self.addCleanup(reconnect_assistants)
        cases = [
            ({"type": "image", "caption": "Meu raio-x"}, "image", "Meu raio-x"),
            ({"type": "video", "caption": "Vídeo"}, "video", "Vídeo"),
            ({"type": "audio", "voice": True}, "audio", ""),
            (
                {"type": "document", "caption": "Exame", "filename": "exame.pdf"},
                "document",
                "Exame",
            ),
            ({"type": "sticker"}, "sticker", ""),
        ]
        for spec, kind, text in cases:
            with self.subTest(kind=kind):
                message = self.customer_sends(**spec)
                self.assertEqual((message.type, message.text), (kind, text))
                media = Media.objects.get(message=message)
                stored = media.file.read()
                media.file.close()
                self.assertEqual(media.sha256, hashlib.sha256(stored).hexdigest())
                self.assertEqual(media.size, len(stored))
                self.assertGreater(media.size, 0)
                self.assertEqual(message.error_title, "")
        document = Message.objects.get(type="document", number=self.number)
        self.assertTrue(document.media.get().file.name.endswith(".pdf"))
        self.assertEqual(document.content["document"]["filename"], "exame.pdf")
        voice = Message.objects.get(type="audio", number=self.number)
        self.assertTrue(voice.content["audio"]["voice"])

    def test_it_stores_location_contacts_and_order(self):
        location = self.customer_sends(
            type="location", latitude=-23.56, longitude=-46.65, name="Clínica", address="Av. X"
        )
        self.assertEqual(location.type, "location")
        self.assertEqual(location.content["location"]["latitude"], -23.56)
        self.assertEqual(location.text, "Clínica, Av. X")
        contacts = self.customer_sends(
            type="contacts", contacts=[{"name": "Dra. Ana", "phone": "+55 11 98888-7777"}]
        )
        self.assertEqual(contacts.type, "contacts")
        self.assertEqual(contacts.text, "Dra. Ana")
        self.assertEqual(
            contacts.content["contacts"]["contacts"][0]["phones"][0]["wa_id"], "5511988887777"
        )
        order = self.customer_sends(
            type="order",
            product_items=[
                {
                    "product_retailer_id": "LIMPEZA",
                    "quantity": 1,
                    "item_price": 150,
                    "currency": "BRL",
                }
            ],
        )
        self.assertEqual(order.type, "order")
        self.assertEqual(
            order.content["order"]["product_items"][0]["product_retailer_id"], "LIMPEZA"
        )

    def test_it_stores_button_list_flow_and_template_button_replies(self):
        button = self.customer_sends(type="button_reply", reply_id="confirm", title="Confirmar")
        self.assertEqual((button.type, button.text), ("interactive", "Confirmar"))
        self.assertEqual(button.content["interactive"]["button_reply"]["id"], "confirm")
        row = self.customer_sends(
            type="list_reply", reply_id="slot-9", title="9h", description="manhã"
        )
        self.assertEqual(row.content["interactive"]["type"], "list_reply")
        self.assertEqual(row.content["interactive"]["list_reply"]["id"], "slot-9")
        flow = self.customer_sends(type="nfm_reply", response={"date": "2026-12-01"})
        self.assertEqual(flow.content["interactive"]["type"], "nfm_reply")
        self.assertIn("2026-12-01", flow.content["interactive"]["nfm_reply"]["response_json"])
        template_button = self.customer_sends(type="button", payload="STOP", text="Parar")
        self.assertEqual((template_button.type, template_button.text), ("button", "Parar"))
        self.assertEqual(template_button.content["button"]["payload"], "STOP")

    def test_reactions_edits_and_revokes_change_the_original_message(self):
        original = self.customer_sends(type="text", text="Chego às 10h")
        self.assertIsNone(
            self.customer_sends(type="reaction", message_id=original.wamid, emoji="👍")
        )
        original.refresh_from_db()
        self.assertEqual(original.content["reactions"], {"customer": "👍"})
        self.customer_sends(type="reaction", message_id=original.wamid, emoji="")
        original.refresh_from_db()
        self.assertEqual(original.content["reactions"], {})
        self.customer_sends(type="edit", original_message_id=original.wamid, text="Chego às 11h")
        original.refresh_from_db()
        self.assertEqual(original.text, "Chego às 11h")
        self.customer_sends(type="revoke", original_message_id=original.wamid)
        original.refresh_from_db()
        self.assertTrue(original.content["revoked"])
        self.assertEqual(original.text, "")
        self.assertEqual(Message.objects.filter(number=self.number, chat=original.chat).count(), 1)

    def test_it_stores_system_and_unsupported_messages(self):
        system = self.customer_sends(
            type="system", system_type="user_changed_number", new_wa_id="5511966665555"
        )
        self.assertEqual(system.type, "system")
        self.assertIn("5511966665555", system.text)
        unsupported = self.customer_sends(type="unsupported", unsupported_type="pool")
        self.assertEqual(unsupported.type, "unsupported")
        self.assertEqual(unsupported.content["errors"][0]["code"], 131051)


class InboundMediaLimitTests(SandboxTestCase):
    def test_it_refuses_a_media_type_whatsapp_does_not_allow(self):
        with self.assertLogs("inbox.services", "WARNING") as logs:
            message = self.customer_sends(
                type="document",
                data_base64=base64.b64encode(b"PK\x03\x04" + bytes(100)).decode(),
                mime_type="application/zip",
                filename="virus.zip",
            )
        self.assertEqual(message.type, "document")
        self.assertFalse(Media.objects.get(message=message).file)
        self.assertTrue(message.error_title.startswith("Media not stored"))
        self.assertIn("application/zip", message.error_details)
        self.assertIn("rejected", "\n".join(logs.output))

    @override_settings(INBOUND_MEDIA_MAX_BYTES=2000)
    def test_it_refuses_media_over_the_size_limit(self):
        with self.assertLogs("inbox.services", "WARNING") as logs:
            message = self.customer_sends(
                type="image",
                data_base64=base64.b64encode(os.urandom(5000)).decode(),
                mime_type="image/png",
            )
        self.assertFalse(Media.objects.get(message=message).file)
        self.assertEqual(message.error_title, "Media not stored: Media too large")
        self.assertIn("5000", message.error_details)
        self.assertIn("Media too large", "\n".join(logs.output))
        small = self.customer_sends(
            type="image", data_base64=base64.b64encode(png(4, 4)).decode(), mime_type="image/png"
        )
        self.assertTrue(Media.objects.get(message=small).file)


def reconnect_assistants():
    from importlib import import_module

    try:
        receivers = import_module("assistants.receivers")
    except ImportError:
        return
    receiver = getattr(receivers, "answer_or_transcribe", None)
    if receiver is not None:
        inbox_signals.message_received.connect(receiver, dispatch_uid="assistants-message-received")
