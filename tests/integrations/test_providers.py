"""Channel providers: each number is spoken through the adapter of its provider, the apps above
``integrations`` ask its capabilities (never its name), and a provider without Meta's rules (no
24-hour window, no templates, a low rate ceiling) needs nothing but its own adapter."""

import re
import threading
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase
from django.urls import reverse
from django.utils import timezone

from campaigns import dispatch
from campaigns import services as campaign_services
from campaigns.dispatch import Dispatcher, Options
from inbox import services as inbox_services
from inbox.models import Chat, Message
from integrations import errors
from integrations.models import WhatsAppNumber
from integrations.providers import (
    Capabilities,
    ChannelProvider,
    capabilities_for,
    provider_class,
    provider_for,
    register,
    unregister,
)
from integrations.providers.cloud_api import CloudAPIProvider
from integrations.providers.sandbox import SandboxProvider
from integrations.whatsapp.errors import error_for_code
from tests.base import BaseTestCase
from tests.campaigns.helpers import TEMPLATES, inbound, make_campaign, make_contacts, make_template

RELAY = "test_relay"


class RelayProvider(ChannelProvider):
    """A stand-in for a WhatsApp Web bridge: no service window, no templates, no media, at most
    two sends a second. It records what it was asked to send instead of calling anyone."""

    capabilities = Capabilities(
        service_window=None,
        templates=False,
        interactive=False,
        reactions=False,
        read_receipts=False,
        media=False,
        max_per_second=2,
    )
    sent: list[dict] = []
    read: list[str] = []
    lock = threading.Lock()

    def send(self, *, to, message_type, content, reply_to=None, callback_data=None) -> str:
        with self.lock:
            self.sent.append(
                {"to": to, "type": message_type, "content": content, "callback": callback_data}
            )
            return f"relay.{len(self.sent)}"

    def mark_read(self, message_id: str, *, to: str = "") -> None:
        self.read.append(message_id)  # never asked: the provider declares no read receipts


class RelayNumberTestCase(BaseTestCase):
    """Alice's number speaks through ``RelayProvider`` (registered for these tests only)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        register(RELAY)(RelayProvider)
        cls.addClassCleanup(unregister, RELAY)

    def setUp(self):
        RelayProvider.sent.clear()
        RelayProvider.read.clear()
        WhatsAppNumber.objects.filter(pk=self.number.pk).update(provider=RELAY)
        self.number.refresh_from_db()
        # The customer last wrote three days ago: on the Cloud API only a template could go.
        Chat.objects.filter(pk=self.other_chat.pk).update(
            window_expires_at=timezone.now() - timedelta(days=2)
        )
        self.chat = Chat.objects.select_related("number", "contact").get(pk=self.other_chat.pk)

    def send(self, message_type: str, content: dict) -> Message:
        with self.captureOnCommitCallbacks(execute=True):
            message = inbox_services.message_send(
                chat=self.chat, message_type=message_type, content=content, author_user=self.admin
            )
        message.refresh_from_db()
        return message


class RegistryTests(BaseTestCase):
    def test_each_number_is_spoken_through_the_adapter_of_its_provider(self):
        self.assertIs(type(provider_for(self.number)), SandboxProvider)
        self.number.provider = WhatsAppNumber.Provider.CLOUD_API
        self.assertIs(type(provider_for(self.number)), CloudAPIProvider)
        capabilities = capabilities_for(self.number)
        self.assertEqual(capabilities.service_window, timedelta(hours=24))
        self.assertTrue(capabilities.templates)
        self.assertIsNone(capabilities.send_rate(None))
        self.assertEqual(capabilities.send_rate(80), 80)

    def test_every_provider_a_number_may_choose_has_an_adapter(self):
        for choice in WhatsAppNumber.Provider.values:
            self.assertEqual(provider_class(choice).key, choice)

    def test_a_number_whose_provider_is_unknown_fails_with_a_clear_permanent_error(self):
        self.number.provider = "carrier_pigeon"
        with self.assertRaisesMessage(errors.UnsupportedError, "carrier_pigeon") as caught:
            provider_for(self.number)
        self.assertTrue(caught.exception.permanent)

    def test_cloud_api_errors_are_the_neutral_kinds_the_apps_catch(self):
        self.assertIsInstance(error_for_code(130429), errors.RateLimitedError)
        self.assertIsInstance(error_for_code(131056), errors.RecipientRateLimitedError)
        self.assertIsInstance(error_for_code(131048), errors.QualityLimitedError)
        self.assertIsInstance(error_for_code(131047), errors.WindowClosedError)
        self.assertIsInstance(error_for_code(131026), errors.RecipientError)
        self.assertFalse(error_for_code(130429).permanent)
        self.assertTrue(error_for_code(131026).permanent)


class RelayInboxTests(RelayNumberTestCase):
    def test_free_text_goes_out_long_after_the_customer_last_wrote(self):
        message = self.send("text", {"body": "Ainda tem horário amanhã?"})
        self.assertEqual(message.status, Message.Status.SENT, message.error_details)
        self.assertEqual(message.wamid, "relay.1")
        self.assertEqual(
            RelayProvider.sent,
            [
                {
                    "to": self.chat.contact.wa_id,
                    "type": "text",
                    "content": {"body": "Ainda tem horário amanhã?"},
                    "callback": f"m:{message.code}",  # inbox sends carry their own marker
                }
            ],
        )
        # The same chat on a Cloud API number: Meta's window applies, the text is refused.
        self.chat.number.provider = WhatsAppNumber.Provider.CLOUD_API
        with self.assertRaisesMessage(inbox_services.SendRefused, "24-hour"):
            self.send("text", {"body": "Oi"})

    def test_templates_and_files_are_refused_with_the_reason_and_hidden_from_the_composer(self):
        with self.assertRaisesMessage(inbox_services.SendRefused, "has no message templates"):
            self.send("template", {"name": "welcome", "language": {"code": "pt_BR"}})
        with self.assertRaisesMessage(inbox_services.SendRefused, "cannot send reaction"):
            self.send("reaction", {"message_id": "wamid.x", "emoji": "👍"})
        self.assertEqual(RelayProvider.sent, [])
        Chat.objects.filter(pk=self.chat.pk).update(unread_count=2)
        self.login(self.operator)
        with self.captureOnCommitCallbacks(execute=True):
            page = self.client.get(reverse("chat_detail", args=[self.chat.code]))
        self.assertContains(page, 'id="composer-text"')
        self.assertNotContains(page, 'data-composer-tab="template"')
        self.assertNotContains(page, 'name="file"')
        self.assertNotContains(page, "Service window")
        self.assertEqual(RelayProvider.read, [], "no read receipt asked of the provider")
        self.chat.refresh_from_db()
        self.assertEqual(self.chat.unread_count, 0)

    def test_the_number_settings_offer_no_template_sync(self):
        self.login(self.admin)
        page = self.client.get(reverse("number_list"))
        self.assertContains(page, self.number.name)
        self.assertNotContains(page, "Sync templates")

    def test_a_customer_message_dates_no_window(self):
        Chat.objects.filter(pk=self.chat.pk).update(window_expires_at=None)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_receive(
                number=self.number, inbound=inbound(self.number, self.chat.contact.wa_id, "Oi")
            )
        self.chat.refresh_from_db()
        self.assertIsNone(self.chat.window_expires_at)
        self.assertTrue(self.chat.window_is_open)


class RelayCampaignTests(RelayNumberTestCase):
    def test_a_campaign_goes_out_as_plain_text_under_the_providers_rate_ceiling(self):
        template = make_template(self.number)  # the campaign's wording; never sent as a template
        contacts = make_contacts(self.org, 3)
        campaign = make_campaign(self.org, self.number, template, rate_per_second=80)
        campaign_services.campaign_launch(campaign=campaign)
        self.assertTrue(dispatch.run_start(campaign.pk))
        campaign.refresh_from_db()
        self.assertLessEqual(dispatch.effective_rate(campaign), 2)

        result = Dispatcher(campaign.pk, Options(idle_sleep=0.02, slice_seconds=30)).run()

        self.assertEqual(result, "done")
        welcome = TEMPLATES["welcome"][0]["text"]
        self.assertEqual(
            sorted((s["to"], s["type"], s["content"]["body"]) for s in RelayProvider.sent),
            [(c.wa_id, "text", welcome) for c in contacts],
        )
        self.assertTrue(all(s["callback"].startswith("cr:") for s in RelayProvider.sent))
        messages = Message.objects.filter(author_type=Message.Author.CAMPAIGN)
        self.assertEqual({(m.type, m.text) for m in messages}, {("text", welcome)})
        self.assertEqual(
            set(campaign.recipients.values_list("status", flat=True)), {"sent"}, "all sent once"
        )


class NoProviderNamesAboveIntegrationsTests(SimpleTestCase):
    """Nothing above ``integrations`` decides by a provider's name or reaches into one
    provider's package for what the neutral modules offer (errors, events, providers)."""

    APPS = (
        "kernel",
        "accounts",
        "inbox",
        "assistants",
        "campaigns",
        "flows",
        "appointments",
        "reports",
        "config",
    )
    NAMES = re.compile(
        r"Provider\.(SANDBOX|CLOUD_API)"
        r"|[\"'](cloud_api|sandbox)[\"']"
        r"|\bprovider\s*(==|!=|\bin\b)"
        r"|provider__in"
        r"|(CloudAPI|Sandbox)Provider"
    )
    PROVIDER_INTERNALS = re.compile(
        r"integrations\.whatsapp\.(errors|payloads|client)\b"
        r"|integrations\.providers\.(cloud_api|sandbox)\b"
        r"|integrations\.services import client_for"
    )

    def sources(self):
        root = Path(settings.BASE_DIR)
        for app in self.APPS:
            for path in (root / app).rglob("*.py"):  # an app not merged yet has no files
                parts = path.relative_to(root).parts
                # Migrations and management commands may set up sandbox numbers (the demo).
                if "migrations" in parts or "commands" in parts:
                    continue
                yield path
        for path in (root / "templates").rglob("*.html"):
            if path.relative_to(root / "templates").parts[0] != "integrations":
                yield path

    def test_no_module_above_integrations_branches_on_a_provider_name(self):
        offenders = [
            f"{path.name}:{number}: {line.strip()}"
            for path in self.sources()
            for number, line in enumerate(path.read_text().splitlines(), start=1)
            if self.NAMES.search(line) or self.PROVIDER_INTERNALS.search(line)
        ]
        self.assertEqual(offenders, [])
