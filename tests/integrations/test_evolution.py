"""WhatsApp Web numbers through Evolution API: the real client against the Evolution emulator
(a real HTTP server), its webhooks captured by a local receiver and posted to our endpoint with
the very bytes and path Evolution would use."""

import base64
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.test import override_settings
from django.utils import translation

from inbox import services as inbox_services
from inbox.models import Chat, Media, Message
from integrations import web
from integrations.errors import IntegrationError
from integrations.models import WebhookEvent, WhatsAppNumber
from integrations.providers import capabilities_for, provider_for
from integrations.whatsapp.evolution_sandbox import EvolutionSandboxApp
from integrations.whatsapp.sandbox import SandboxServer
from integrations.whatsapp.sandbox.samples import png
from tests.base import BaseTestCase
from tests.integrations.conftest import WebhookReceiver

KEY = "evo-test-global-key"
CUSTOMER = "5511955554444"
PHONE = "5511933332222"


class EvolutionTestCase(BaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.receiver = WebhookReceiver().start()
        cls.emulator = SandboxServer(EvolutionSandboxApp(api_key=KEY, delivery_delay=0)).start()
        cls._settings = override_settings(
            EVOLUTION_API_URL=cls.emulator.url,
            EVOLUTION_API_KEY=KEY,
            EVOLUTION_WEBHOOK_BASE_URL=cls.receiver.url.removesuffix("/webhook"),
            EGRESS_ALLOW_PRIVATE=False,  # the installation's own server is allowed anyway
            EVOLUTION_DAILY_CAP=3,
        )
        cls._settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._settings.disable()
        cls.emulator.stop()
        cls.receiver.stop()
        super().tearDownClass()

    def setUp(self):
        self.app: EvolutionSandboxApp = self.emulator.app
        self.receiver.requests.clear()
        self.web = web.web_number_create(organization=self.org, name="Recepção (WhatsApp Web)")
        self.info = web.web_number_connect(self.web)

    # --- helpers -----------------------------------------------------------------------------

    def take(self, event: str, count: int = 1):
        """The next ``count`` webhooks of ``event`` the emulator sent (waiting for them)."""

        def found(items):
            return [
                r
                for r in items
                if r.json()["event"] == event
                and r.json()["instance"] == self.web.evolution_instance  # not a former test's
                and not r.headers.get("x-seen")
            ]

        self.receiver.wait_for(lambda items: len(found(items)) >= count)
        picked = found(self.receiver.requests)[:count]
        for received in picked:
            received.headers["x-seen"] = "1"
        return picked

    def forward(self, received, **headers):
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                received.path, data=received.body, content_type="application/json", headers=headers
            )
        self.assertEqual(response.status_code, 200, response.content)
        return response

    def pair(self):
        self.app.handle(_control(f"instances/{self.web.evolution_instance}/pair", {"phone": PHONE}))
        self.forward(self.take("connection.update")[0])
        self.web.refresh_from_db()

    def customer_sends(self, **spec) -> Message | None:
        data = self.app.inbound(
            self.app.instances[self.web.evolution_instance],
            {"from": CUSTOMER, "name": "Carla", **spec},
        )
        self.forward(self.take("messages.upsert")[0])
        return Message.objects.filter(number=self.web, wamid=data["key"]["id"]).first()

    def raw_event(self, event: str, data: dict):
        instance = self.app.instances[self.web.evolution_instance]
        self.app.webhook(instance, event, data, delay=0)
        self.forward(self.take(event)[0])

    def render(self, message) -> str:
        message = (
            Message.objects.select_related("reply_to", "author_user")
            .prefetch_related("media")
            .get(pk=message.pk)
        )
        with translation.override("en"):
            return render_to_string("inbox/_message.html", {"message": message})


def _control(path: str, body: dict):
    from integrations.whatsapp.sandbox.http import Request

    return Request(
        method="POST",
        path=f"/_sandbox/{path}",
        query={},
        headers={},
        body=json.dumps(body).encode(),
        base_url="",
    )


class ConnectionTests(EvolutionTestCase):
    def test_connecting_shows_a_qr_until_the_phone_pairs(self):
        self.assertEqual(self.info.state, "connecting")
        self.assertTrue(self.info.qr.startswith("data:image/svg+xml;base64,"))
        self.assertIn(b"<svg", base64.b64decode(self.info.qr.partition(",")[2])[:400])
        self.web.refresh_from_db()
        self.assertEqual(self.web.connection_state, "connecting")
        # The instance's webhook points at our per-number URL, secret in the path.
        instance = self.app.instances[self.web.evolution_instance]
        self.assertTrue(
            instance.webhook["url"].endswith(
                f"/webhooks/evolution/{self.web.webhook_key}/{self.web.webhook_secret}/"
            )
        )
        self.forward(self.take("qrcode.updated")[0])
        self.pair()
        self.assertEqual(self.web.connection_state, "open")
        self.assertEqual(self.web.connection_qr, "")
        self.assertEqual(self.web.display_phone_number, f"+{PHONE}")
        self.assertEqual(web.web_number_refresh(self.web).state, "open")

    def test_connecting_again_reuses_the_instance_and_logout_closes_it(self):
        self.pair()
        self.assertEqual(web.web_number_connect(self.web).state, "open")
        web.web_number_logout(self.web)
        self.web.refresh_from_db()
        self.assertEqual(self.web.connection_state, "close")
        again = web.web_number_connect(self.web)
        self.assertEqual(again.state, "connecting")
        self.assertTrue(again.qr)

    def test_a_wrong_api_key_is_a_clear_permanent_error(self):
        with (
            override_settings(EVOLUTION_API_KEY="wrong"),
            self.assertRaises(IntegrationError) as caught,
        ):
            provider_for(self.web).connection_state()
        self.assertTrue(caught.exception.permanent)
        self.assertIn("API key", caught.exception.message)

    def test_an_organizations_private_server_is_refused_unless_listed(self):
        from integrations.models import EvolutionServer

        server = EvolutionServer.objects.create(
            organization=self.org, name="Own", base_url=self.emulator.url, api_key=KEY
        )
        self.web.evolution_server = server
        self.web.save()
        with self.assertRaises(IntegrationError) as caught:
            provider_for(self.web).connection_state()
        self.assertIn("private", caught.exception.message)
        with override_settings(EVOLUTION_PRIVATE_URLS=[self.emulator.url]):
            self.assertEqual(provider_for(self.web).connection_state().state, "connecting")
        self.assertEqual(
            WhatsAppNumber.objects.get(pk=self.web.pk).evolution_server.api_key, KEY
        )  # read back decrypted; stored encrypted (see the crypto tests)


class WebhookAuthTests(EvolutionTestCase):
    def test_the_postgresql_receiver_routes_evolution_paths_with_their_secret(self):
        from integrations.ingest import PATH

        cloud = PATH.match("/webhooks/whatsapp/abc/")
        self.assertEqual((cloud[1], cloud[2], cloud[3]), ("abc", None, None))
        with_secret = PATH.match("/webhooks/evolution/abc/s3cr3t/")
        self.assertEqual((with_secret[2], with_secret[3]), ("abc", "s3cr3t"))
        self.assertEqual(PATH.match("/webhooks/evolution/abc/")[2], "abc")
        self.assertIsNone(PATH.match("/webhooks/evolution/abc/s/extra/"))

    def test_without_the_secret_401_and_nothing_stored(self):
        body = json.dumps({"event": "messages.upsert", "data": {}}).encode()
        before = WebhookEvent.objects.count()
        response = self.client.post(
            f"/webhooks/evolution/{self.web.webhook_key}/", body, content_type="application/json"
        )
        self.assertEqual(response.status_code, 401)
        wrong = self.client.post(
            f"/webhooks/evolution/{self.web.webhook_key}/not-the-secret/",
            body,
            content_type="application/json",
        )
        self.assertEqual(wrong.status_code, 403)
        header = self.client.post(
            f"/webhooks/evolution/{self.web.webhook_key}/",
            body,
            content_type="application/json",
            headers={"X-Porfin-Path-Secret": self.web.webhook_secret},  # not a way in
        )
        self.assertEqual(header.status_code, 401)
        self.assertEqual(WebhookEvent.objects.count(), before)

    def test_the_secret_may_come_as_an_apikey_header(self):
        self.pair()
        response = self.client.post(
            f"/webhooks/evolution/{self.web.webhook_key}/",
            json.dumps({"event": "connection.update", "data": {"state": "open"}}),
            content_type="application/json",
            headers={"apikey": self.web.webhook_secret},
        )
        self.assertEqual(response.status_code, 200)

    def test_another_numbers_secret_is_refused(self):
        other = web.web_number_create(organization=self.other_org, name="Bob web")
        response = self.client.post(
            f"/webhooks/evolution/{self.web.webhook_key}/{other.webhook_secret}/",
            "{}",
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 403)

    def test_a_replayed_message_is_stored_once(self):
        self.pair()
        instance = self.app.instances[self.web.evolution_instance]
        self.app.inbound(instance, {"from": CUSTOMER, "text": "Oi, tem horário?"})
        (received,) = self.take("messages.upsert")
        for _ in range(5):
            self.forward(received)
        self.assertEqual(
            Message.objects.filter(number=self.web, text="Oi, tem horário?").count(), 1
        )
        self.assertEqual(WebhookEvent.objects.filter(number=self.web).count(), 1 + 5)


class InboundTests(EvolutionTestCase):
    def setUp(self):
        super().setUp()
        self.pair()

    def test_text_arrives_in_the_inbox_without_a_service_window(self):
        message = self.customer_sends(text="Olá! Queria marcar uma consulta")
        self.assertEqual(message.direction, Message.Direction.INBOUND)
        self.assertEqual(message.text, "Olá! Queria marcar uma consulta")
        chat = message.chat
        self.assertEqual(chat.contact.wa_id, CUSTOMER)
        self.assertEqual(chat.contact.profile_name, "Carla")
        self.assertIsNone(chat.window_expires_at)
        self.assertTrue(chat.window_is_open)
        self.assertIn("Queria marcar uma consulta", self.render(message))

    def test_every_message_type_is_normalised_and_rendered(self):
        image = base64.b64encode(png(4, 4)).decode()
        first = self.customer_sends(text="primeira")
        cases = {
            "reply": ({"text": "respondendo", "reply_to": first.wamid}, "text", "respondendo"),
            "image": (
                {"type": "image", "mime_type": "image/png", "data_base64": image, "text": "foto"},
                "image",
                "foto",
            ),
            "voice": (
                {"type": "audio", "mime_type": "audio/ogg; codecs=opus", "data_base64": "T2dnUw=="},
                "audio",
                "",
            ),
            "video": (
                {
                    "type": "video",
                    "mime_type": "video/mp4",
                    "data_base64": "AAAAGGZ0eXA=",
                    "text": "vid",
                },
                "video",
                "vid",
            ),
            "document": (
                {
                    "type": "document",
                    "mime_type": "application/pdf",
                    "data_base64": base64.b64encode(b"%PDF-1.4 x").decode(),
                    "filename": "exame.pdf",
                },
                "document",
                "exame.pdf",
            ),
            "sticker": (
                {"type": "sticker", "mime_type": "image/webp", "data_base64": "UklGRg=="},
                "sticker",
                "",
            ),
            "location": (
                {"type": "location", "latitude": -23.55, "longitude": -46.63, "name": "Clínica"},
                "location",
                "Clínica",
            ),
            "contact": (
                {
                    "message": {
                        "contactMessage": {
                            "displayName": "Dra. Ana",
                            "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Dra. Ana\n"
                            "TEL;type=CELL;waid=5511944443333:+55 11 94444-3333\nEND:VCARD",
                        }
                    }
                },
                "contacts",
                "Dra. Ana",
            ),
            "contacts": (
                {
                    "message": {
                        "contactsArrayMessage": {
                            "contacts": [
                                {"displayName": "João", "vcard": "BEGIN:VCARD\nFN:João\nEND:VCARD"},
                                {
                                    "displayName": "Maria",
                                    "vcard": "BEGIN:VCARD\nFN:Maria\nEND:VCARD",
                                },
                            ]
                        }
                    }
                },
                "contacts",
                "Maria",
            ),
        }
        for name, (spec, kind, shown) in cases.items():
            with self.subTest(name):
                message = self.customer_sends(**spec)
                self.assertEqual(message.type, kind)
                html = self.render(message)
                if shown:
                    self.assertIn(shown, html)
        reply = Message.objects.get(number=self.web, text="respondendo")
        self.assertEqual(reply.reply_to, first)
        self.assertIn("primeira", self.render(reply))
        voice = Message.objects.get(number=self.web, type="audio")
        self.assertTrue(voice.content["audio"]["voice"])
        photo = Media.objects.get(message__number=self.web, message__type="image")
        self.assertEqual(photo.file.read(), png(4, 4))  # downloaded from the emulator
        self.assertIn("<img", self.render(photo.message))
        pdf = Media.objects.get(message__number=self.web, message__type="document")
        self.assertEqual(pdf.filename, "exame.pdf")

    def test_media_carried_in_the_webhook_is_kept_without_asking_evolution(self):
        photo = base64.b64encode(png(5, 5)).decode()
        data = self.app.inbound(
            self.app.instances[self.web.evolution_instance],
            {
                "from": CUSTOMER,
                "message": {"imageMessage": {"mimetype": "image/png"}, "base64": photo},
            },
        )
        self.assertNotIn(data["key"]["id"], self.app.instances[self.web.evolution_instance].media)
        self.forward(self.take("messages.upsert")[0])
        media = Media.objects.get(message__wamid=data["key"]["id"])
        self.assertEqual(media.file.read(), png(5, 5))

    def test_reactions_edits_and_deletions_change_the_original(self):
        original = self.customer_sends(text="às 10h")
        self.customer_sends(type="reaction", message_id=original.wamid, emoji="👍")
        edited_key = {
            "remoteJid": f"{CUSTOMER}@s.whatsapp.net",
            "fromMe": False,
            "id": original.wamid,
        }
        self.customer_sends(
            message={
                "protocolMessage": {
                    "key": edited_key,
                    "type": "MESSAGE_EDIT",
                    "editedMessage": {"conversation": "às 11h"},
                }
            }
        )
        original.refresh_from_db()
        self.assertEqual(original.content["reactions"]["customer"], "👍")
        self.assertEqual(original.text, "às 11h")
        html = self.render(original)
        self.assertIn("Edited", html)
        self.assertIn("às 11h", html)
        self.raw_event("messages.delete", edited_key)
        original.refresh_from_db()
        self.assertTrue(original.content["revoked"])
        self.assertIn("This message was deleted", self.render(original))
        gone = self.customer_sends(text="apagar")
        self.customer_sends(
            message={"protocolMessage": {"key": {"id": gone.wamid}, "type": "REVOKE"}}
        )
        gone.refresh_from_db()
        self.assertTrue(gone.content["revoked"])
        self.assertEqual(Message.objects.filter(number=self.web).count(), 2)

    def test_groups_are_ignored_by_default(self):
        message = self.customer_sends(group="120363041967849074", text="no grupo")
        self.assertIsNone(message)
        self.assertFalse(Message.objects.filter(number=self.web, text="no grupo").exists())
        with override_settings(EVOLUTION_GROUPS=True):
            self.assertIsNotNone(self.customer_sends(group="120363041967849075", text="grupo"))

    def test_a_message_sent_from_the_phone_is_stored_as_outbound_once(self):
        self.customer_sends(text="oi")
        data = self.app.inbound(
            self.app.instances[self.web.evolution_instance],
            {"from": CUSTOMER, "from_me": True, "text": "Respondi pelo celular"},
        )
        (received,) = self.take("messages.upsert")
        self.forward(received)
        self.forward(received)
        sent = Message.objects.get(number=self.web, wamid=data["key"]["id"])
        self.assertEqual(sent.direction, Message.Direction.OUTBOUND)
        self.assertEqual(sent.status, Message.Status.SENT)
        self.assertEqual(sent.chat.contact.wa_id, CUSTOMER)
        self.assertIn("Respondi pelo celular", self.render(sent))


class OutboundTests(EvolutionTestCase):
    def setUp(self):
        super().setUp()
        self.pair()
        self.inbound = self.customer_sends(text="Bom dia")
        self.chat = self.inbound.chat

    def send(self, message_type, content, **kwargs) -> Message:
        with self.captureOnCommitCallbacks(execute=True):
            message = inbox_services.message_send(
                chat=self.chat,
                message_type=message_type,
                content=content,
                author_user=self.agent,
                **kwargs,
            )
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.SENT, message.error_details)
        return message

    def emulated_phone(self) -> list[dict]:
        return self.app.instances[self.web.evolution_instance].sent

    def test_every_outbound_type_reaches_the_phone(self):
        text = self.send("text", {"body": "Temos às 15h"}, reply_to=self.inbound)
        self.send("location", {"latitude": -23.5, "longitude": -46.6, "name": "Clínica"})
        self.send(
            "contacts",
            [
                {
                    "name": {"formatted_name": "Recepção"},
                    "phones": [{"phone": "+5511900001111", "wa_id": "5511900001111"}],
                }
            ],
        )
        with self.captureOnCommitCallbacks(execute=True):
            reaction = inbox_services.message_react(
                chat=self.chat, target=self.inbound, emoji="❤️", author_user=self.agent
            )
        with self.captureOnCommitCallbacks(execute=True):
            photo = inbox_services.message_send_attachment(
                chat=self.chat,
                upload=SimpleUploadedFile("foto.png", png(3, 3), content_type="image/png"),
                caption="Sua receita",
                author_user=self.agent,
            )
        with self.captureOnCommitCallbacks(execute=True):
            voice = inbox_services.message_send_attachment(
                chat=self.chat,
                upload=SimpleUploadedFile("audio.ogg", b"OggS-voice", content_type="audio/ogg"),
                caption="",
                author_user=self.agent,
            )
        routes = [(s["route"], s["body"]) for s in self.emulated_phone()]
        self.assertEqual(
            [r for r, _ in routes],
            [
                "sendText",
                "sendLocation",
                "sendContact",
                "sendReaction",
                "sendMedia",
                "sendWhatsAppAudio",
            ],
        )
        self.assertEqual(routes[0][1]["text"], "Temos às 15h")
        self.assertEqual(routes[0][1]["quoted"]["key"]["id"], self.inbound.wamid)
        self.assertEqual(routes[0][1]["number"], CUSTOMER)
        self.assertEqual(routes[2][1]["contact"][0]["fullName"], "Recepção")
        self.assertEqual(routes[3][1]["key"]["id"], self.inbound.wamid)
        self.assertEqual(routes[3][1]["reaction"], "❤️")
        self.assertEqual(base64.b64decode(routes[4][1]["media"]), png(3, 3))
        self.assertEqual(routes[4][1]["caption"], "Sua receita")
        self.assertEqual(base64.b64decode(routes[5][1]["audio"]), b"OggS-voice")
        for message in (text, reaction):
            message.refresh_from_db()
            self.assertTrue(message.wamid)
        for message in (photo, voice):
            message.refresh_from_db()
            self.assertEqual(message.status, Message.Status.SENT)

    def test_our_own_sends_come_back_once_and_statuses_move_forward(self):
        message = self.send("text", {"body": "Confirmado"})
        (echo,) = self.take("send.message")
        self.forward(echo)
        (delivered,) = self.take("messages.update")
        self.forward(delivered)
        self.assertEqual(Message.objects.filter(number=self.web, text="Confirmado").count(), 1)
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.DELIVERED)
        self.raw_event(
            "messages.update",
            {
                "keyId": message.wamid,
                "remoteJid": f"{CUSTOMER}@s.whatsapp.net",
                "fromMe": True,
                "status": "READ",
            },
        )
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.READ)

    def test_read_receipts_and_typing_reach_the_phone(self):
        inbox_services.read_receipt_send(self.inbound.pk)
        instance = self.app.instances[self.web.evolution_instance]
        self.assertEqual(instance.read, [self.inbound.wamid])
        provider_for(self.web).send_presence(to=CUSTOMER)
        self.assertEqual(instance.presence[0]["presence"], "composing")

    def test_templates_and_buttons_are_refused_on_a_web_number(self):
        capabilities = capabilities_for(self.web)
        self.assertFalse(capabilities.templates)
        self.assertIsNone(capabilities.service_window)
        with self.assertRaises(inbox_services.SendRefused):
            inbox_services.message_send(
                chat=self.chat,
                message_type="template",
                content={"name": "x", "language": {"code": "pt_BR"}},
                author_user=self.agent,
            )

    def test_a_closed_session_fails_the_send_with_the_reason(self):
        web.web_number_logout(self.web)
        with self.captureOnCommitCallbacks(execute=True):
            message = inbox_services.message_send(
                chat=self.chat, message_type="text", content={"body": "x"}, author_user=self.agent
            )
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.FAILED)
        self.assertIn("Connection Closed", message.error_details)


class DailyCapTests(EvolutionTestCase):
    def test_the_daily_cap_refuses_past_the_limit(self):
        self.assertEqual(web.daily_cap_for(self.web), 3)
        self.assertTrue(web.daily_quota_take(self.web, 2))
        self.assertTrue(web.daily_quota_take(self.web))
        self.assertFalse(web.daily_quota_take(self.web))
        self.assertEqual(web.daily_sends(self.web), 3)
        self.web.daily_cap = 5
        self.assertTrue(web.daily_quota_take(self.web, 2))
        self.assertFalse(web.daily_quota_take(self.web))
        # Cloud API numbers have no cap here (Meta enforces its tiers itself).
        self.assertIsNone(web.daily_cap_for(self.number))
        self.assertTrue(web.daily_quota_take(self.number, 10_000))

    def test_web_numbers_get_a_conservative_random_gap(self):
        gap = web.send_gap_seconds(self.web)
        self.assertGreaterEqual(gap, 20)
        self.assertLessEqual(gap, 60)
        self.assertIsNone(web.send_gap_seconds(self.number))


class ChatsOnWebNumbers(EvolutionTestCase):
    def test_the_chat_has_no_window_banner(self):
        self.pair()
        message = self.app.inbound(
            self.app.instances[self.web.evolution_instance], {"from": CUSTOMER, "text": "x"}
        )
        self.forward(self.take("messages.upsert")[0])
        chat = Chat.objects.get(number=self.web)
        self.assertFalse(chat.has_service_window)
        self.assertTrue(message["key"]["id"])
