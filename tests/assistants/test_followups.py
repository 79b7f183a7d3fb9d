"""Acting on the conversation analysis' follow-up date: remind the assignee (default) or send
the organization's follow-up template; once, never twice; opt-out respected."""

from datetime import UTC, date, datetime, timedelta

from django.urls import reverse

from assistants import followups
from assistants.models import AISettings, ConversationAnalysis
from inbox.models import Chat, Contact, Message, Notification
from integrations.models import MessageTemplate
from tests.base import BaseTestCase

DAY = date(2026, 3, 10)
# 10:00 in São Paulo (the organization's zone, UTC-3): the follow-up day has come.
MORNING = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)


def template(number, name="retorno", body="Olá {{1}}, podemos ajudar com algo mais?", **extra):
    return MessageTemplate.objects.create(
        organization_id=number.organization_id,
        number=number,
        name=name,
        language="pt_BR",
        category="MARKETING",
        status="APPROVED",
        components=[{"type": "BODY", "text": body}],
        **extra,
    )


class FollowUpTestCase(BaseTestCase):
    def setUp(self):
        self.chat = self.agent_chat
        self.analysis = self.analyse(self.chat)

    def analyse(self, chat, on=DAY, **fields):
        return ConversationAnalysis.objects.create(
            organization=self.org, chat=chat, follow_up_on=on, next_step="ligar amanhã", **fields
        )

    def choose(self, action, template=None):
        AISettings.objects.update_or_create(
            organization=self.org,
            defaults={"follow_up_action": action, "follow_up_template": template},
        )

    def notes(self, user):
        return list(Notification.objects.filter(user=user).values_list("text", flat=True))

    def followups_sent(self):
        return Message.objects.filter(author_ref__startswith="follow-up:")


class RemindTests(FollowUpTestCase):
    def test_by_default_the_assignee_is_reminded_once(self):
        self.assertEqual(followups.followups_due(now=MORNING), {"reminded": 1})
        [text] = self.notes(self.agent)
        self.assertIn("Assigned Customer", text)
        self.assertIn("ligar amanhã", text)
        self.assertEqual(followups.followups_due(now=MORNING + timedelta(minutes=1)), {})
        self.assertEqual(len(self.notes(self.agent)), 1)
        self.analysis.refresh_from_db()
        self.assertEqual(self.analysis.follow_up_result, "reminded")
        self.assertIsNotNone(self.analysis.follow_up_done_at)
        self.assertFalse(self.followups_sent().exists())

    def test_nothing_happens_before_the_day_and_hour_in_the_organization_zone(self):
        self.assertEqual(followups.followups_due(now=MORNING - timedelta(days=1)), {})
        # 08:00 in São Paulo, 11:00 UTC: the day has come but not the hour.
        self.assertEqual(followups.followups_due(now=MORNING - timedelta(hours=2)), {})
        self.assertEqual(self.notes(self.agent), [])

    def test_an_unassigned_chat_reminds_the_admins_and_managers(self):
        self.analysis.delete()
        self.analyse(self.other_chat)
        followups.followups_due(now=MORNING)
        self.assertEqual(len(self.notes(self.admin)), 1)
        self.assertEqual(len(self.notes(self.manager)), 1)
        self.assertEqual(self.notes(self.agent), [])
        self.assertEqual(self.notes(self.outsider), [])

    def test_only_the_latest_analysis_of_a_chat_counts(self):
        newer = self.analyse(self.chat, on=DAY + timedelta(days=5))
        ConversationAnalysis.objects.filter(pk=newer.pk).update(
            created_at=self.analysis.created_at + timedelta(hours=1)
        )
        self.assertEqual(followups.followups_due(now=MORNING), {"superseded": 1})
        self.assertEqual(self.notes(self.agent), [])
        newer.refresh_from_db()
        self.assertIsNone(newer.follow_up_done_at)

    def test_a_follow_up_days_late_expires_instead_of_firing(self):
        self.assertEqual(followups.followups_due(now=MORNING + timedelta(days=10)), {"expired": 1})
        self.assertEqual(self.notes(self.agent), [])

    def test_off_does_nothing_but_records_it(self):
        self.choose(AISettings.FollowUpAction.OFF)
        self.assertEqual(followups.followups_due(now=MORNING), {"off": 1})
        self.assertEqual(self.notes(self.agent), [])

    def test_the_claim_is_a_conditional_update_won_once(self):
        self.assertTrue(followups._claim(self.analysis.pk, "reminded", MORNING))
        self.assertFalse(followups._claim(self.analysis.pk, "reminded", MORNING))
        self.assertEqual(followups.followups_due(now=MORNING), {})
        self.assertEqual(self.notes(self.agent), [])


class TemplateTests(FollowUpTestCase):
    def setUp(self):
        super().setUp()
        self.template = template(self.number)
        self.choose(AISettings.FollowUpAction.TEMPLATE, self.template)

    def test_the_template_goes_to_the_customer_with_the_first_name_once(self):
        Contact.objects.filter(pk=self.chat.contact_id).update(name="Joana Prado")
        self.assertEqual(followups.followups_due(now=MORNING), {"sent": 1})
        [message] = self.followups_sent()
        self.assertEqual(message.type, Message.Type.TEMPLATE)
        self.assertEqual(message.chat_id, self.chat.pk)
        self.assertEqual(message.author_type, Message.Author.AUTOMATION)
        sent = message.content["template"]
        self.assertEqual(sent["name"], "retorno")
        self.assertEqual(
            sent["components"],
            [{"type": "body", "parameters": [{"type": "text", "text": "Joana"}]}],
        )
        self.assertEqual(self.notes(self.agent), [])
        followups.followups_due(now=MORNING + timedelta(minutes=5))
        self.assertEqual(self.followups_sent().count(), 1)

    def test_an_opted_out_customer_gets_no_template_and_the_assignee_is_reminded(self):
        Contact.objects.filter(pk=self.chat.contact_id).update(opt_in=Contact.OptIn.OPTED_OUT)
        self.assertEqual(followups.followups_due(now=MORNING), {"opted_out": 1})
        self.assertFalse(self.followups_sent().exists())
        [text] = self.notes(self.agent)
        self.assertIn("opted out", text)
        self.analysis.refresh_from_db()
        self.assertEqual(self.analysis.follow_up_result, "opted_out")

    def test_a_chat_on_a_number_without_that_template_reminds_instead(self):
        MessageTemplate.objects.filter(pk=self.template.pk).update(status="PAUSED")
        self.assertEqual(followups.followups_due(now=MORNING), {"no_template": 1})
        self.assertFalse(self.followups_sent().exists())
        self.assertEqual(len(self.notes(self.agent)), 1)


class SettingsPageTests(FollowUpTestCase):
    url = "/assistants/settings/follow-ups/"

    def test_the_organization_picks_the_template_mode(self):
        chosen = template(self.number)
        self.login(self.admin)
        page = self.client.get(reverse("ai_settings"))
        self.assertContains(page, 'id="follow-ups"')
        response = self.client.post(
            self.url, {"follow_up_action": "template", "follow_up_template": chosen.pk}
        )
        self.assertEqual(response.status_code, 302)
        config = AISettings.objects.get(organization=self.org)
        self.assertEqual(config.follow_up_action, "template")
        self.assertEqual(config.follow_up_template, chosen)

    def test_a_template_with_two_variables_or_none_chosen_is_refused(self):
        two = template(self.number, name="dois", body="Olá {{1}}, sua consulta é {{2}}.")
        self.login(self.admin)
        response = self.client.post(
            self.url,
            {"follow_up_action": "template", "follow_up_template": two.pk},
            HTTP_HX_REQUEST="true",
        )
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "more than one variable", status_code=400)
        response = self.client.post(self.url, {"follow_up_action": "template"})
        self.assertEqual(response.status_code, 400)
        self.assertFalse(AISettings.objects.filter(organization=self.org).exists())

    def test_another_organizations_template_cannot_be_chosen(self):
        theirs = template(self.other_number)
        self.login(self.admin)
        response = self.client.post(
            self.url, {"follow_up_action": "template", "follow_up_template": theirs.pk}
        )
        self.assertEqual(response.status_code, 400)

    def test_htmx_saves_in_place_and_an_agent_may_not(self):
        self.login(self.admin)
        response = self.client.post(self.url, {"follow_up_action": "off"}, HTTP_HX_REQUEST="true")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Follow-up settings saved.")
        self.assertNotContains(response, "<html")
        self.login(self.agent)
        self.assertEqual(
            self.client.post(self.url, {"follow_up_action": "remind"}).status_code, 403
        )
        self.assertEqual(self.client.get(self.url, follow=False).status_code, 403)


class TickTests(FollowUpTestCase):
    def test_it_runs_from_the_periodic_tick(self):
        from assistants import tasks
        from kernel.tasks import PERIODIC

        self.assertIn("assistants.tasks.followups_tick", PERIODIC)
        ConversationAnalysis.objects.filter(pk=self.analysis.pk).update(
            follow_up_on=date.today() - timedelta(days=1)
        )
        self.assertEqual(tasks.followups_tick(), {"reminded": 1})
        self.assertEqual(Chat.objects.get(pk=self.chat.pk).assignee, self.agent)
