"""The demo organization has a WhatsApp Web number paired on the embedded Evolution emulator,
with a few chats; the emulator (in memory, in the web process) restores the sessions of such
numbers when it starts, as a real Evolution server keeps its sessions across restarts."""

import io

from django.core.management import call_command
from django.test import TransactionTestCase, override_settings

from inbox.models import Chat
from integrations import sandbox_web, web
from integrations.models import WhatsAppNumber
from integrations.providers import capabilities_for, provider_for
from integrations.whatsapp.evolution_sandbox import EvolutionSandboxApp
from integrations.whatsapp.sandbox import SandboxServer

KEY = "evo-demo-key"


class DemoWebNumberTests(TransactionTestCase):
    """Committed rows: the emulator restores from its own thread and connection."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator = SandboxServer(
            EvolutionSandboxApp(api_key=KEY, delivery_delay=0, restore=None)
        ).start()
        cls._settings = override_settings(
            SANDBOX_ENABLED=True,
            EVOLUTION_API_URL="",
            SANDBOX_EVOLUTION_URL=cls.emulator.url,
            SANDBOX_EVOLUTION_KEY=KEY,
        )
        cls._settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._settings.disable()
        cls.emulator.stop()
        super().tearDownClass()

    def web_number(self) -> WhatsAppNumber:
        return WhatsAppNumber.objects.get(
            organization__slug="clinica-sorriso",
            is_active=True,
            connection_state="open",
            evolution_instance__gt="",
        )

    def test_the_demo_has_a_paired_web_number_with_chats_once(self):
        call_command("demo", stdout=io.StringIO())
        number = self.web_number()
        self.assertIsNotNone(capabilities_for(number).daily_cap)  # a WhatsApp Web number
        self.assertTrue(sandbox_web.is_emulated(number))
        self.assertEqual(Chat.objects.filter(number=number).count(), 3)
        call_command("demo", stdout=io.StringIO())
        self.assertEqual(WhatsAppNumber.objects.filter(pk=number.pk).count(), 1)
        self.assertEqual(Chat.objects.filter(number=number).count(), 3)

    def test_the_emulator_restores_the_session_on_its_first_request(self):
        call_command("demo", stdout=io.StringIO())
        number = self.web_number()
        app: EvolutionSandboxApp = self.emulator.app
        app.instances.clear()
        app.restore = sandbox_web.emulated_sessions  # as config.asgi mounts it
        self.assertEqual(web.web_number_refresh(number).state, "open")  # not "does not exist"
        restored = app.instances[number.evolution_instance]
        self.assertEqual(restored.phone, "5511940005678")
        self.assertIn(f"/webhooks/evolution/{number.webhook_key}/", restored.webhook["url"])
        provider_for(number).send(
            to="5511965430007", message_type="text", content={"body": "Temos às 16h!"}
        )
        self.assertEqual(sandbox_web.sent_to_phone(number)[0]["text"], "Temos às 16h!")

    @override_settings(SANDBOX_ENABLED=False)
    def test_without_the_sandbox_the_demo_has_no_web_number(self):
        call_command("demo", stdout=io.StringIO())
        self.assertFalse(
            WhatsAppNumber.objects.filter(organization__slug="clinica-sorriso")
            .exclude(evolution_instance="")
            .exists()
        )
