"""The WhatsApp Web pages: add a number, its QR and state, its message texts; who may use them;
and what the inbox and campaigns show for such a number."""

from django.test import override_settings

from inbox.models import Chat, Contact, Message
from integrations import web
from integrations.models import WhatsAppNumber
from integrations.whatsapp.evolution_sandbox import EvolutionSandboxApp
from integrations.whatsapp.sandbox import SandboxServer
from tests.base import BaseTestCase

KEY = "evo-views-key"


class WebNumberPagesTests(BaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator = SandboxServer(EvolutionSandboxApp(api_key=KEY)).start()
        cls._settings = override_settings(
            EVOLUTION_API_URL=cls.emulator.url,
            EVOLUTION_API_KEY=KEY,
            EVOLUTION_WEBHOOK_BASE_URL="http://127.0.0.1:9",
        )
        cls._settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._settings.disable()
        cls.emulator.stop()
        super().tearDownClass()

    def test_an_admin_adds_a_number_and_sees_its_qr_code(self):
        self.login(self.admin)
        listing = self.client.get("/settings/numbers/")
        self.assertContains(listing, "/settings/numbers/web/new/")
        self.assertContains(self.client.get("/settings/numbers/web/new/"), "banned")
        response = self.client.post("/settings/numbers/web/new/", {"name": "Recepção"})
        number = WhatsAppNumber.objects.get(organization=self.org, provider="evolution")
        self.assertRedirects(response, f"/settings/numbers/web/{number.code}/")
        page = self.client.get(f"/settings/numbers/web/{number.code}/")
        self.assertContains(page, 'src="data:image/svg+xml;base64,')
        self.assertContains(page, "every 2s")  # refreshes itself until paired
        self.assertContains(page, "Waiting for the phone")
        self.assertIn(number.evolution_instance, self.emulator.app.instances)

    def test_the_numbers_pages_show_a_web_numbers_connection(self):
        self.login(self.admin)
        number = web.web_number_create(organization=self.org, name="Recepção Web")
        web.web_number_connect(number)
        listing = self.client.get("/settings/numbers/")
        self.assertContains(listing, "Recepção Web")
        self.assertContains(listing, "connecting")  # asked live from the Evolution server
        detail = self.client.get(f"/settings/numbers/{number.code}/")
        self.assertContains(detail, f"/settings/numbers/web/{number.code}/")

    def test_the_state_panel_stops_refreshing_once_paired(self):
        self.login(self.admin)
        number = web.web_number_create(organization=self.org, name="Web")
        WhatsAppNumber.objects.filter(pk=number.pk).update(
            connection_state="open", display_phone_number="+5511900000009"
        )
        panel = self.client.get(f"/settings/numbers/web/{number.code}/state/")
        self.assertContains(panel, "Connected")
        self.assertContains(panel, "+5511900000009")
        self.assertNotContains(panel, "hx-trigger")

    def test_without_webhooks_the_panel_asks_the_server_now_and_then(self):
        from datetime import timedelta

        from django.utils import timezone

        self.login(self.admin)
        number = web.web_number_create(organization=self.org, name="Web")
        web.web_number_connect(number)
        self.emulator.app.instances[number.evolution_instance].state = "open"  # no webhook came
        panel = self.client.get(f"/settings/numbers/web/{number.code}/state/")
        self.assertContains(panel, "Waiting for the phone")  # asked at most every 10 s
        WhatsAppNumber.objects.filter(pk=number.pk).update(
            connection_updated_at=timezone.now() - timedelta(seconds=11)
        )
        panel = self.client.get(f"/settings/numbers/web/{number.code}/state/")
        self.assertContains(panel, "Connected")

    def test_an_unreachable_server_is_a_clear_message_not_a_500(self):
        self.login(self.admin)
        with override_settings(EVOLUTION_API_URL="http://127.0.0.1:9"):
            response = self.client.post(
                "/settings/numbers/web/new/", {"name": "Recepção"}, follow=True
            )
        self.assertContains(response, "Could not reach the Evolution API server")
        self.assertContains(response, "Disconnected")

    def test_only_settings_editors_of_the_organization(self):
        number = web.web_number_create(organization=self.org, name="Web")
        self.login(self.agent)
        self.assertEqual(self.client.get("/settings/numbers/web/new/").status_code, 403)
        self.assertEqual(self.client.get(f"/settings/numbers/web/{number.code}/").status_code, 403)
        self.login(self.outsider)
        self.assertEqual(self.client.get(f"/settings/numbers/web/{number.code}/").status_code, 404)
        self.assertEqual(
            self.client.post(f"/settings/numbers/web/{number.code}/logout/").status_code, 404
        )
        self.login(self.admin)  # a Cloud API number has no QR page
        self.assertEqual(
            self.client.get(f"/settings/numbers/web/{self.number.code}/").status_code, 404
        )

    def test_message_texts_become_choices_for_campaigns(self):
        self.login(self.admin)
        number = web.web_number_create(organization=self.org, name="Web")
        response = self.client.post(
            f"/settings/numbers/web/{number.code}/texts/",
            {"name": "lembrete", "body": "Olá {{1}}, até amanhã!"},
        )
        self.assertEqual(response.status_code, 302)
        page = self.client.get(f"/settings/numbers/web/{number.code}/")
        self.assertContains(page, "Olá {{1}}, até amanhã!")
        form = self.client.get("/campaigns/new/")
        self.assertContains(form, "lembrete")
        self.assertContains(form, "saved message texts")
        bad = self.client.post(f"/settings/numbers/web/{number.code}/texts/", {"name": "x y"})
        self.assertEqual(bad.status_code, 400)

    def test_the_composer_of_a_web_chat_offers_no_template_and_no_window(self):
        number = web.web_number_create(organization=self.org, name="Web")
        contact = Contact.objects.create(organization=self.org, wa_id="5511977770001", name="Rui")
        chat = Chat.objects.create(organization=self.org, contact=contact, number=number)
        Message.objects.create(
            organization=self.org,
            chat=chat,
            number=number,
            direction="in",
            text="oi",
            wamid="3EB0AAA",
            author_type=Message.Author.CUSTOMER,
        )
        self.login(self.admin)
        page = self.client.get(f"/inbox/{chat.code}/")
        self.assertContains(page, 'id="composer-text"')
        self.assertNotContains(page, 'data-composer-tab="template"')
        self.assertNotContains(page, "Service window")
