"""Campaigns on a WhatsApp Web number: a saved text instead of a template, sent one at a time
with a random gap, never past the number's daily cap; and a visible ban-risk warning."""

from django.test import override_settings
from django.utils import timezone

from campaigns import dispatch, services
from campaigns.models import Campaign
from integrations import web
from integrations.whatsapp.evolution_sandbox import EvolutionSandboxApp
from integrations.whatsapp.sandbox import SandboxServer
from tests.base import BaseTestCase
from tests.campaigns.helpers import make_campaign, make_contacts
from tests.campaigns.test_dispatch import run

KEY = "evo-campaign-key"


class WebCampaignTests(BaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator = SandboxServer(EvolutionSandboxApp(api_key=KEY)).start()
        cls._settings = override_settings(
            EVOLUTION_API_URL=cls.emulator.url,
            EVOLUTION_API_KEY=KEY,
            EVOLUTION_WEBHOOK_BASE_URL="http://127.0.0.1:9",
            EVOLUTION_GAP_MIN_SECONDS=0.0,
            EVOLUTION_GAP_MAX_SECONDS=0.01,
            EVOLUTION_DAILY_CAP=4,
        )
        cls._settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._settings.disable()
        cls.emulator.stop()
        super().tearDownClass()

    def setUp(self):
        self.web = web.web_number_create(organization=self.org, name="Web")
        web.web_number_connect(self.web)
        self.emulator.app.handle(_pair(self.web.evolution_instance))
        self.text = web.web_text_save(
            number=self.web, name="lembrete", body="Olá {{1}}, sua consulta é amanhã!"
        )

    def launch(self, campaign):
        services.campaign_launch(campaign=campaign)
        self.assertTrue(dispatch.run_start(campaign.pk))
        campaign.refresh_from_db()
        return campaign

    def test_it_sends_the_text_and_stops_at_the_daily_cap_until_tomorrow(self):
        make_contacts(self.org, 6)
        campaign = make_campaign(
            self.org,
            self.web,
            self.text,
            variables={"body": [{"source": "field", "value": "name", "fallback": "cliente"}]},
        )
        campaign = self.launch(campaign)
        run(campaign, slice_seconds=8)  # about 1 send a second: the cap is reached in time
        sent = self.emulator.app.instances[self.web.evolution_instance].sent
        self.assertEqual(len(sent), 4)  # the cap, not one more
        self.assertEqual({s["route"] for s in sent}, {"sendText"})
        self.assertTrue(sent[0]["body"]["text"].startswith("Olá Cliente "))
        self.assertEqual(web.daily_sends(self.web), 4)
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, Campaign.Status.RUNNING)
        self.assertGreater(campaign.throttled_until, timezone.now() + timezone.timedelta(minutes=1))
        self.assertEqual(campaign.recipients.filter(status="queued").count(), 2)

    def test_campaign_pages_warn_about_the_ban_risk(self):
        self.login(self.admin)
        campaign = make_campaign(self.org, self.web, self.text)
        page = self.client.get(f"/campaigns/{campaign.code}/")
        self.assertContains(page, "ban")
        self.assertContains(page, "4")  # the daily cap, shown
        cloud = make_campaign(self.org, self.number, _cloud_template(self.number))
        self.assertNotContains(self.client.get(f"/campaigns/{cloud.code}/"), "banned")


def _cloud_template(number):
    from tests.campaigns.helpers import make_template

    return make_template(number)


def _pair(instance):
    from tests.integrations.test_evolution import _control

    return _control(f"instances/{instance}/pair", {"phone": "5511900000001"})
