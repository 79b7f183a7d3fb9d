"""Owners' back office: re-running an analysis and pausing or resuming a campaign from the
Django admin, with the same services the pages use, within their own organization only."""

from django.urls import reverse

from assistants import services
from assistants.models import ConversationAnalysis
from campaigns.models import Campaign
from tests.assistants.helpers import AssistantTestCase
from tests.campaigns.helpers import make_campaign, make_template

ANALYSIS = (
    '{"summary": "%s", "intent": "agendar", "sentiment": "positive", "lead_score": 7, '
    '"lead_score_reason": "pediu horário", "next_step": "ligar", "follow_up_days": 2}'
)


class BackOfficeActionTests(AssistantTestCase):
    def setUp(self):
        super().setUp()
        self.admin.is_staff = True
        self.admin.save()
        self.login(self.admin)

    def act(self, model, action, objects):
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post(
                url,
                {"action": action, "_selected_action": [o.pk for o in objects]},
                follow=True,
            )

    def test_an_owner_re_runs_the_analysis_of_a_conversation(self):
        self.stub.script({"content": ANALYSIS % "Primeira leitura"})
        first = services.chat_analyze(chat=self.agent_chat)
        self.stub.script({"content": ANALYSIS % "Segunda leitura"})
        response = self.act(ConversationAnalysis, "rerun", [first])
        self.assertContains(response, "The analysis of 1 conversation was queued.")
        latest = ConversationAnalysis.objects.filter(chat=self.agent_chat).order_by("-pk").first()
        self.assertEqual(latest.summary, "Segunda leitura")

    def test_an_owner_pauses_and_resumes_campaigns_but_not_finished_ones(self):
        template = make_template(self.number)
        running = make_campaign(self.org, self.number, template, status=Campaign.Status.SCHEDULED)
        done = make_campaign(self.org, self.number, template, status=Campaign.Status.COMPLETED)
        response = self.act(Campaign, "pause", [running, done])
        self.assertContains(response, "1 campaign changed.")
        self.assertContains(response, "1 left as they were.")
        running.refresh_from_db()
        done.refresh_from_db()
        self.assertEqual((running.status, done.status), ("paused", "completed"))
        self.act(Campaign, "resume", [running])
        running.refresh_from_db()
        self.assertEqual(running.status, Campaign.Status.SCHEDULED)

    def test_another_organizations_campaign_cannot_be_paused_from_here(self):
        template = make_template(self.other_number)
        foreign = make_campaign(
            self.other_org, self.other_number, template, status=Campaign.Status.SCHEDULED
        )
        self.act(Campaign, "pause", [foreign])
        foreign.refresh_from_db()
        self.assertEqual(foreign.status, Campaign.Status.SCHEDULED)
