"""An automation rule's action "start a flow": flows register it in campaigns' action registry
(campaigns never imports flows); the rule's form offers the published flows, and the rule
starts the flow in the contact's chat."""

from django.urls import reverse

from campaigns.models import Automation, AutomationRun
from flows.models import FlowRun
from inbox.models import Chat
from tests.flows.helpers import CUSTOMER, FlowTestCase


class StartFlowActionTests(FlowTestCase):
    def test_a_keyword_rule_starts_the_flow_in_the_chat(self):
        flow = self.published_flow()
        self.login(self.manager)
        form = self.client.get(reverse("automation_create"))
        self.assertContains(form, "Start a flow")
        self.assertContains(form, f'value="{flow.code}"')
        response = self.client.post(
            reverse("automation_create"),
            {"name": "Orçamento", "is_active": "on", "trigger": "keyword",
             "keywords": "orçamento", "hours": "24", "max_runs": "3", "per_hours": "24",
             "extra_start_flow": str(flow.code)},
        )  # fmt: skip
        rule = Automation.objects.get(organization=self.org, name="Orçamento")
        self.assertRedirects(response, reverse("automation_runs", args=[rule.code]))
        self.assertEqual(rule.action_extra, {"start_flow": str(flow.code)})

        first = self.receive("queria um orçamento")
        chat = Chat.objects.get(pk=first.chat_id)
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual(run.trigger, "automation Orçamento")
        self.assertEqual([m.text for m in self.sent(chat)], ["Olá Maria!", "O que deseja?"])
        (automation_run,) = AutomationRun.objects.filter(automation=rule)
        self.assertEqual(automation_run.actions[0]["action"], "start_flow")
        self.assertTrue(automation_run.actions[0]["ok"])
        self.assertIn("Flow Agendamento started", automation_run.actions[0]["detail"])

    def test_a_flow_already_running_or_unpublished_is_skipped_with_the_reason(self):
        flow = self.published_flow()
        rule = Automation.objects.create(
            organization=self.org, name="Sempre", trigger="keyword", keywords="menu",
            action_extra={"start_flow": str(flow.code)},
        )  # fmt: skip
        self.receive("menu")  # the flow's own keyword starts it first (the router's handler)
        (automation_run,) = AutomationRun.objects.filter(automation=rule)
        self.assertIsNone(automation_run.actions[0]["ok"])
        self.assertIn("already running", automation_run.actions[0]["detail"])
        self.assertEqual(FlowRun.objects.filter(chat__contact__wa_id=CUSTOMER).count(), 1)

    def test_the_form_refuses_another_organizations_flow(self):
        self.login(self.manager)
        response = self.client.post(
            reverse("automation_create"),
            {"name": "X", "is_active": "on", "trigger": "keyword", "keywords": "x",
             "hours": "24", "max_runs": "3", "per_hours": "24",
             "extra_start_flow": "00000000-0000-0000-0000-000000000000"},
        )  # fmt: skip
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Select a valid choice")
        self.assertFalse(Automation.objects.filter(name="X").exists())
