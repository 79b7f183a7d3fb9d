"""The "assign to a team" step: the team's round robin (the same domain function as new
chats' auto-assignment) deals the chat to a member online with room; the team must be one of
the organization's (on save, publish and import, naming the node); the editor lists it."""

import json

from asgiref.sync import async_to_sync
from django.urls import reverse

from accounts.models import Team
from flows import definition, services
from flows.models import Flow, FlowRun
from inbox import presence
from inbox.models import Chat, Message
from tests.flows.helpers import FlowTestCase
from tests.flows.test_actions import chain


class AssignToTeamTests(FlowTestCase):
    def setUp(self):
        super().setUp()
        self.team = Team.objects.create(organization=self.org, name="Financeiro")
        self.team.members.set([self.agent, self.operator])
        async_to_sync(presence.seen)(self.org.pk, self.operator.pk)  # Ana (agent) is away
        self.secret_team = Team.objects.create(organization=self.other_org, name="Bob's team")

    def flow_with(self, team):
        return chain(
            {"id": "billing", "type": "assign_team", "props": {"team": str(team.code)}},
            {"id": "ok", "type": "message", "props": {"text": "Um momento!"}},
        )

    def test_the_chat_goes_to_an_online_member_of_the_team(self):
        self.published_flow(self.flow_with(self.team))
        message = self.receive("go")
        chat = Chat.objects.get(pk=message.chat_id)
        self.assertEqual((chat.team, chat.assignee), (self.team, self.operator))
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual(run.status, FlowRun.Status.COMPLETED)
        self.assertIn("Financeiro: Otto Operator", run.steps.values_list("detail", flat=True))
        activity = chat.messages.filter(type=Message.Type.ACTIVITY).values_list("text", flat=True)
        self.assertTrue(any("round robin" in text for text in activity))
        self.assertEqual(self.sent(chat)[-1].text, "Um momento!")

    def test_nobody_online_leaves_the_chat_in_the_teams_queue(self):
        async_to_sync(presence.gone)(self.org.pk, self.operator.pk)
        self.published_flow(self.flow_with(self.team))
        chat = Chat.objects.get(pk=self.receive("go").chat_id)
        self.assertEqual((chat.team, chat.assignee), (self.team, None))
        run = FlowRun.objects.get(chat=chat)
        self.assertIn(
            "Financeiro: nobody online has room", run.steps.values_list("detail", flat=True)
        )

    def test_another_organizations_team_is_refused_naming_the_node(self):
        with self.assertRaises(definition.DefinitionError) as refused:
            services.flow_create(
                organization=self.org, name="Cobrança", draft=self.flow_with(self.secret_team)
            )
        self.assertIn("node billing", str(refused.exception))
        self.assertIn("not one of this organization's teams", str(refused.exception))
        self.assertFalse(Flow.objects.filter(name="Cobrança").exists())
        missing = self.flow_with(self.team)
        missing["nodes"][1]["props"]["team"] = ""
        problems = definition.check(missing, organization_id=self.org.pk)
        self.assertEqual([(p.node, p.message) for p in problems], [("billing", "Choose the team.")])

    def test_an_export_imported_elsewhere_names_the_unknown_team_and_saves_nothing(self):
        flow = services.flow_create(
            organization=self.org, name="Cobrança", draft=self.flow_with(self.team)
        )
        exported = services.flow_export(flow=flow)
        before = Flow.objects.filter(organization=self.other_org).count()
        with self.assertRaises(definition.DefinitionError) as refused:
            services.flow_import(organization=self.other_org, data=exported)
        self.assertEqual(refused.exception.problems[0].node, "billing")
        self.assertEqual(Flow.objects.filter(organization=self.other_org).count(), before)
        copy = services.flow_import(organization=self.org, data=json.loads(json.dumps(exported)))
        self.assertEqual(copy.draft["nodes"][1]["props"]["team"], str(self.team.code))

    def test_the_editor_library_lists_the_step_with_the_organizations_teams(self):
        flow = services.flow_create(organization=self.org, name="Cobrança")
        self.login(self.admin)
        response = self.client.get(reverse("flow_edit", args=[flow.code]))
        step = response.context["catalog"]["assign_team"]
        team_field = next(f for f in step["fields"] if f["name"] == "team")
        self.assertIn([str(self.team.code), "Financeiro"], team_field["choices"])
        self.assertNotIn("Bob's team", json.dumps(team_field["choices"]))
        check = self.client.post(
            reverse("flow_check", args=[flow.code]),
            json.dumps({"definition": self.flow_with(self.secret_team)}),
            content_type="application/json",
        )
        self.assertEqual(check.json()["problems"][0]["node"], "billing")
