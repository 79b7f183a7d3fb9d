"""Automation rules: every trigger, the conditions, every action, loop prevention and the run
log, through the real inbox services and a real WhatsApp sandbox."""

import json
from datetime import timedelta

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from campaigns import automations
from campaigns.models import (
    Automation,
    AutomationRun,
    CampaignRecipient,
    DripEnrolment,
    DripProgram,
)
from inbox import services as inbox_services
from inbox.models import Chat, Contact, Message
from integrations.models import WebhookDelivery, WebhookSubscription, WhatsAppNumber
from tests.api.receiver import Receiver
from tests.base import BaseTestCase
from tests.campaigns.helpers import SandboxMixin, inbound, make_campaign, make_template

T = Automation.Trigger
CUSTOMER = "5511955550001"


class AutomationTestCase(SandboxMixin, BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        WhatsAppNumber.objects.filter(pk__in=[cls.number.pk, cls.other_number.pk]).update(
            waba_id="900111"
        )
        cls.number.refresh_from_db()
        cls.other_number.refresh_from_db()

    def setUp(self):
        self.sandbox_number(self.number)

    def rule(self, trigger=T.KEYWORD, organization=None, **fields):
        return Automation.objects.create(
            organization=organization or self.org,
            name=fields.pop("name", "Regra"),
            trigger=trigger,
            **fields,
        )

    def receive(self, text, wa_id=CUSTOMER, number=None):
        number = number or self.number
        with self.captureOnCommitCallbacks(execute=True):
            return inbox_services.message_receive(
                number=number, inbound=inbound(number, wa_id, text)
            )

    def automated(self, chat_or_contact=None) -> list[Message]:
        messages = Message.objects.filter(
            direction=Message.Direction.OUTBOUND, author_type=Message.Author.AUTOMATION
        )
        if isinstance(chat_or_contact, Chat):
            messages = messages.filter(chat=chat_or_contact)
        return list(messages.order_by("id"))

    def runs(self, rule, **filters):
        return list(AutomationRun.objects.filter(automation=rule, **filters).order_by("id"))


class MessageTriggerTests(AutomationTestCase):
    def test_a_keyword_anywhere_in_the_message_runs_the_rule(self):
        rule = self.rule(
            keywords="preço, valor", action_text="Olá {{first_name}}! A limpeza custa R$ 150."
        )
        rule.action_tags = ["interessado"]
        rule.save()
        self.receive("Bom dia, qual o VALOR da limpeza?")
        (reply,) = self.automated()
        self.assertEqual(reply.text, "Olá Cliente! A limpeza custa R$ 150.")
        self.assertEqual(reply.author_ref, str(rule.code))
        self.assertEqual(self.sent_to(self.number), [CUSTOMER])  # really went to WhatsApp
        contact = Contact.objects.get(wa_id=CUSTOMER)
        self.assertEqual(contact.tags, ["interessado"])
        (run,) = self.runs(rule)
        self.assertEqual(run.outcome, AutomationRun.Outcome.SUCCEEDED)
        self.assertEqual(run.chat_id, reply.chat_id)
        self.assertEqual([a["action"] for a in run.actions], ["tag", "message"])

    def test_it_ignores_messages_without_the_keyword_and_keywords_inside_words(self):
        rule = self.rule(keywords="oi", action_text="Olá!")
        self.receive("boa noite, tudo bem?")  # "noite" contains "oi"
        self.assertEqual(self.runs(rule), [])
        self.assertEqual(self.automated(), [])

    def test_accents_and_case_do_not_matter(self):
        rule = self.rule(keywords="orcamento", action_text="Já envio!")
        self.receive("Quero um ORÇAMENTO")
        self.assertEqual(len(self.runs(rule, outcome="succeeded")), 1)

    def test_a_new_contact_runs_the_rule_once(self):
        rule = self.rule(T.NEW_CONTACT, action_text="Bem-vindo à clínica!")
        self.receive("Olá")
        self.receive("Tudo bem?")
        self.assertEqual([m.text for m in self.automated()], ["Bem-vindo à clínica!"])
        (run,) = self.runs(rule)
        self.assertEqual(run.key, f"contact:{run.contact_id}")

    def test_a_reply_to_a_campaign_runs_the_rules_of_that_campaign(self):
        template = make_template(self.number)
        campaign = make_campaign(self.org, self.number, template)
        other = make_campaign(self.org, self.number, template, name="Outra")
        contact = Contact.objects.create(
            organization=self.org, wa_id=CUSTOMER, phone=f"+{CUSTOMER}", name="Rita"
        )
        CampaignRecipient.objects.create(
            organization=self.org,
            campaign=campaign,
            contact=contact,
            to=CUSTOMER,
            status=CampaignRecipient.Status.DELIVERED,
            sent_at=timezone.now(),
            wamid="wamid.campaign.1",
        )
        mine = self.rule(T.CAMPAIGN_REPLY, trigger_campaign=campaign, action_tags=["respondeu"])
        theirs = self.rule(T.CAMPAIGN_REPLY, trigger_campaign=other, action_tags=["outra"])
        self.receive("Sim, quero confirmar")
        contact.refresh_from_db()
        self.assertEqual(contact.tags, ["respondeu"])
        self.assertEqual(len(self.runs(mine)), 1)
        self.assertEqual(self.runs(theirs), [])


class ChatTriggerTests(AutomationTestCase):
    def test_resolving_a_chat_sends_the_template_when_the_window_is_closed(self):
        template = make_template(self.number)
        rule = self.rule(
            T.CHAT_RESOLVED, action_text="Obrigado!", action_template=template, action_ai="off"
        )
        chat = self.other_chat  # no customer message in 24 h: the window is closed
        Chat.objects.filter(pk=chat.pk).update(ai_enabled=True)
        chat.refresh_from_db()
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_status(chat=chat, status=Chat.Status.RESOLVED, actor=self.admin)
        (sent,) = self.automated(chat)
        self.assertEqual(sent.type, Message.Type.TEMPLATE)
        self.assertEqual(sent.content["template"]["name"], "welcome")
        chat.refresh_from_db()
        self.assertFalse(chat.ai_enabled)
        self.assertEqual(self.runs(rule)[0].outcome, AutomationRun.Outcome.SUCCEEDED)

    def test_a_tag_added_in_the_inbox_assigns_the_chat(self):
        rule = self.rule(T.TAG_ADDED, trigger_tag="Urgente", action_assignee=self.agent)
        chat = self.other_chat
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_tags(chat=chat, tags=["urgente"], actor=self.admin)
        chat.refresh_from_db()
        self.assertEqual(chat.assignee, self.agent)
        self.assertEqual(self.runs(rule)[0].actions[0]["action"], "assign")
        # Removing and keeping other tags does not run it again.
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_tags(chat=chat, tags=["urgente", "outra"], actor=self.admin)
        self.assertEqual(len(self.runs(rule)), 1)


class TimeTriggerTests(AutomationTestCase):
    def test_no_reply_for_n_hours_follows_up_once(self):
        rule = self.rule(T.NO_REPLY, hours=4, action_tags=["sem-resposta"])
        message = self.receive("Quanto custa?")
        chat = Chat.objects.get(pk=message.chat_id)
        with self.captureOnCommitCallbacks(execute=True):
            ours = inbox_services.message_send(
                chat=chat,
                message_type="text",
                content={"body": "R$ 150. Quer agendar?"},
                author_user=self.admin,
            )
        self.assertEqual(automations.automations_tick(ours.timestamp + timedelta(hours=3)), {
            "no_reply": 0, "date_ahead": 0
        })  # fmt: skip
        later = ours.timestamp + timedelta(hours=4, minutes=1)
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(automations.automations_tick(later)["no_reply"], 1)
            self.assertEqual(automations.automations_tick(later)["no_reply"], 0)
        (run,) = self.runs(rule)
        self.assertEqual(run.key, f"no_reply:{ours.pk}")
        self.assertEqual(Contact.objects.get(wa_id=CUSTOMER).tags, ["sem-resposta"])

    def test_an_answer_or_an_automations_own_message_stops_or_never_starts_the_clock(self):
        rule = self.rule(T.NO_REPLY, hours=1, action_text="Ainda por aí?")
        message = self.receive("Oi")
        chat = Chat.objects.get(pk=message.chat_id)
        with self.captureOnCommitCallbacks(execute=True):
            ours = inbox_services.message_send(
                chat=chat, message_type="text", content={"body": "Olá!"}, author_user=self.admin
            )
            inbox_services.message_send(
                chat=chat,
                message_type="text",
                content={"body": "automático"},
                author_type=Message.Author.AUTOMATION,
            )
        self.receive("Obrigado!")
        self.assertEqual(
            automations.automations_tick(ours.timestamp + timedelta(hours=2))["no_reply"], 0
        )
        # Only the automation wrote after the customer: no follow-up of a follow-up.
        Message.objects.filter(chat=chat, author_type=Message.Author.CUSTOMER).update(
            timestamp=ours.timestamp - timedelta(minutes=1)
        )
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(
                automations.automations_tick(ours.timestamp + timedelta(hours=2))["no_reply"], 1
            )
        self.assertEqual(len(self.runs(rule)), 1)
        self.assertEqual(
            automations.automations_tick(timezone.now() + timedelta(hours=30))["no_reply"], 0
        )

    def test_a_date_attribute_n_hours_ahead_sends_a_reminder_once(self):
        template = make_template(self.number)
        rule = self.rule(
            T.DATE_AHEAD,
            hours=24,
            date_attribute="consulta",
            action_template=template,
            number=self.number,
        )
        tomorrow = timezone.localtime(timezone.now() + timedelta(hours=20))
        soon = Contact.objects.create(
            organization=self.org,
            wa_id="5511955550009",
            phone="+5511955550009",
            name="Rui",
            attributes={"consulta": tomorrow.strftime("%Y-%m-%d %H:%M")},
        )
        Contact.objects.create(
            organization=self.org,
            wa_id="5511955550008",
            phone="+5511955550008",
            attributes={"consulta": (tomorrow + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")},
        )
        Contact.objects.create(
            organization=self.org,
            wa_id="5511955550007",
            phone="+5511955550007",
            attributes={"consulta": "não sei"},
        )
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(automations.automations_tick()["date_ahead"], 1)
        self.assertEqual(automations.automations_tick()["date_ahead"], 0)
        (run,) = self.runs(rule)
        self.assertEqual(run.contact, soon)
        self.assertEqual(self.sent_to(self.number), ["5511955550009"])
        self.assertEqual(Chat.objects.get(contact=soon).number, self.number)


class ConditionTests(AutomationTestCase):
    def test_tags_attributes_and_number_must_hold(self):
        rule = self.rule(
            keywords="oi",
            action_tags=["ok"],
            condition_tags=["cliente"],
            condition_exclude_tags=["bloqueado"],
            condition_attributes={"plano": "Ouro"},
            number=self.number,
        )
        self.receive("oi")
        (skipped,) = self.runs(rule)
        self.assertEqual(skipped.outcome, AutomationRun.Outcome.SKIPPED)
        self.assertIn("cliente", skipped.detail)
        Contact.objects.filter(wa_id=CUSTOMER).update(
            tags=["Cliente"], attributes={"plano": "ouro"}
        )
        self.receive("oi de novo")
        self.assertEqual(self.runs(rule)[-1].outcome, AutomationRun.Outcome.SUCCEEDED)
        Contact.objects.filter(wa_id=CUSTOMER).update(tags=["cliente", "bloqueado"])
        self.receive("oi outra vez")
        self.assertIn("bloqueado", self.runs(rule)[-1].detail)

    def test_the_time_window_is_read_in_the_organizations_zone(self):
        now = timezone.localtime(timezone.now(), timezone.get_fixed_timezone(-180))
        start = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
        end = (now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
        rule = self.rule(keywords="oi", action_tags=["x"], window_start=start, window_end=end)
        self.receive("oi")
        self.assertIn("window", self.runs(rule)[0].detail)
        rule.window_start = (now - timedelta(hours=1)).time()
        rule.save()
        self.receive("oi")
        self.assertEqual(self.runs(rule)[-1].outcome, AutomationRun.Outcome.SUCCEEDED)

    def test_another_numbers_chats_do_not_match(self):
        second = WhatsAppNumber.objects.create(
            organization=self.org,
            name="Filial",
            display_phone_number="+55 11 4000-0001",
            phone_number_id="333",
            waba_id="900111",
            access_token="t",
            app_secret="s",
        )
        rule = self.rule(keywords="oi", action_tags=["x"], number=second)
        self.receive("oi")
        self.assertIn("another number", self.runs(rule)[0].detail)


class ActionTests(AutomationTestCase):
    def test_ai_on_and_drip_enrolment(self):
        program = DripProgram.objects.create(
            organization=self.org, name="Dicas", number=self.number
        )
        rule = self.rule(keywords="dicas", action_ai="on", action_drip=program)
        message = self.receive("quero dicas")
        self.assertTrue(Chat.objects.get(pk=message.chat_id).ai_enabled)
        enrolment = DripEnrolment.objects.get(program=program)
        self.assertEqual(enrolment.source, "automation")
        self.assertEqual(self.runs(rule)[0].outcome, AutomationRun.Outcome.SUCCEEDED)

    def test_text_outside_the_window_without_a_template_fails_with_the_reason(self):
        rule = self.rule(T.CHAT_RESOLVED, action_text="Obrigado!", action_tags=["atendido"])
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_status(
                chat=self.other_chat, status=Chat.Status.RESOLVED, actor=self.admin
            )
        (run,) = self.runs(rule)
        self.assertEqual(run.outcome, AutomationRun.Outcome.PARTIAL)
        self.assertIn("24-hour window", run.detail)
        self.assertEqual(self.automated(), [])

    @override_settings(EGRESS_ALLOW_PRIVATE=True)
    def test_the_webhook_action_delivers_a_signed_event(self):
        receiver = Receiver().start()
        self.addCleanup(receiver.stop)
        subscription = WebhookSubscription.objects.create(
            organization=self.org, url=receiver.url, events=[]
        )
        rule = self.rule(keywords="humano", action_webhook=subscription, name="CRM")
        self.receive("quero falar com um humano")
        delivery = WebhookDelivery.objects.get(subscription=subscription)
        self.assertEqual(delivery.status, WebhookDelivery.Status.SUCCEEDED)
        headers, body = receiver.requests[0]
        self.assertTrue(headers["x-porfin-signature"].startswith("v1="))
        event = json.loads(body)
        self.assertEqual(event["type"], "automation.run")
        self.assertEqual(event["data"]["automation"]["name"], "CRM")
        self.assertEqual(event["data"]["contact"]["phone"], f"+{CUSTOMER}")
        self.assertEqual(self.runs(rule)[0].outcome, AutomationRun.Outcome.SUCCEEDED)

    def test_an_assignee_who_left_fails_that_action_only(self):
        from accounts.models import Membership

        rule = self.rule(keywords="oi", action_assignee=self.agent, action_tags=["x"])
        Membership.objects.filter(user=self.agent).delete()
        self.receive("oi")
        (run,) = self.runs(rule)
        self.assertEqual(run.outcome, AutomationRun.Outcome.PARTIAL)
        self.assertIn("no longer a member", run.detail)


class LoopTests(AutomationTestCase):
    def test_an_automations_own_message_does_not_trigger_message_rules(self):
        rule = self.rule(keywords="oi", action_text="oi! Como posso ajudar? Diga oi de novo.")
        self.receive("oi")
        self.assertEqual(len(self.automated()), 1)
        self.assertEqual(len(self.runs(rule)), 1)

    def test_a_rule_never_runs_again_from_its_own_action(self):
        rule = self.rule(T.TAG_ADDED, trigger_tag="vip", action_tags=["vip", "ouro"])
        chained = self.rule(T.TAG_ADDED, trigger_tag="ouro", action_tags=["platina"], name="B")
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_tags(chat=self.other_chat, tags=["vip"], actor=self.admin)
        runs = self.runs(rule)
        self.assertEqual([r.outcome for r in runs], ["succeeded", "skipped"])
        self.assertIn("loop", runs[1].detail)
        self.assertEqual(self.runs(chained)[0].outcome, "succeeded")  # other rules still chain
        self.assertEqual(
            Contact.objects.get(pk=self.other_chat.contact_id).tags, ["vip", "ouro", "platina"]
        )

    def test_runs_per_contact_are_capped(self):
        rule = self.rule(keywords="oi", action_tags=["x"], max_runs=2, per_hours=24)
        rule.action_text = "Olá!"
        rule.save()
        for _ in range(3):
            self.receive("oi")
        outcomes = [r.outcome for r in self.runs(rule)]
        self.assertEqual(outcomes, ["succeeded", "succeeded", "skipped"])
        self.assertIn("2 times", self.runs(rule)[-1].detail)
        self.assertEqual(len(self.automated()), 2)


class TenantIsolationTests(AutomationTestCase):
    def test_another_organizations_rule_never_acts_on_our_contacts(self):
        theirs = self.rule(keywords="oi", action_tags=["bob"], organization=self.other_org)
        ours = self.rule(keywords="oi", action_tags=["alice"])
        self.receive("oi")
        self.assertEqual(self.runs(theirs), [])
        self.assertEqual(Contact.objects.get(organization=self.org, wa_id=CUSTOMER).tags, ["alice"])
        self.assertEqual(len(self.runs(ours)), 1)
        # And the time-based ones only see their own organization's contacts.
        self.rule(T.DATE_AHEAD, organization=self.other_org, date_attribute="d", action_tags=["b"])
        Contact.objects.filter(wa_id=CUSTOMER).update(
            attributes={"d": (timezone.now() + timedelta(hours=1)).isoformat()}
        )
        self.assertEqual(automations.automations_tick()["date_ahead"], 0)


class AutomationPageTests(AutomationTestCase):
    def form_data(self, **overrides):
        data = {
            "name": "Preços",
            "is_active": "on",
            "trigger": T.KEYWORD,
            "keywords": "preço, valor",
            "hours": "24",
            "action_text": "Nossa tabela: ...",
            "action_tags": "interessado, preço",
            "condition_attributes": "plano=ouro",
            "max_runs": "3",
            "per_hours": "24",
        }
        return {**data, **overrides}

    def test_a_manager_creates_edits_and_reads_the_run_log(self):
        self.login(self.manager)
        self.assertContains(self.client.get(reverse("automation_list")), "No automations yet")
        response = self.client.post(reverse("automation_create"), self.form_data())
        rule = Automation.objects.get(organization=self.org)
        self.assertRedirects(response, reverse("automation_runs", args=[rule.code]))
        self.assertEqual(rule.action_tags, ["interessado", "preço"])
        self.assertEqual(rule.condition_attributes, {"plano": "ouro"})
        Contact.objects.filter(pk=self.other_chat.contact_id).update(attributes={"plano": "ouro"})
        self.receive("qual o preço?", wa_id="5511900000002")
        page = self.client.get(reverse("automation_runs", args=[rule.code]))
        self.assertContains(page, "Unassigned Customer")
        self.assertContains(page, "Tagged: interessado, preço")
        partial = self.client.get(
            reverse("automation_runs", args=[rule.code]),
            {"outcome": "failed"},
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(partial, "No runs yet.")
        self.assertNotContains(partial, "<html")
        edit = reverse("automation_edit", args=[rule.code])
        self.assertContains(self.client.get(edit), "preço, valor")
        self.client.post(edit, self.form_data(name="Tabela", is_active=""))
        rule.refresh_from_db()
        self.assertEqual((rule.name, rule.is_active), ("Tabela", False))

    def test_it_explains_what_is_missing(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("automation_create"),
            self.form_data(keywords="", action_text="", action_tags="", condition_attributes="x"),
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Give at least one keyword.")
        self.assertContains(response, "Choose at least one action.")
        self.assertContains(response, "write name=value")
        self.assertFalse(Automation.objects.exists())

    def test_operators_read_but_do_not_change(self):
        rule = self.rule(keywords="oi", action_tags=["x"])
        self.login(self.operator)
        self.assertEqual(
            self.client.get(reverse("automation_runs", args=[rule.code])).status_code, 200
        )
        self.assertEqual(self.client.get(reverse("automation_create")).status_code, 403)
        self.assertEqual(
            self.client.post(reverse("automation_delete", args=[rule.code])).status_code, 403
        )
        self.login(self.agent)
        self.assertEqual(self.client.get(reverse("automation_list")).status_code, 403)

    def test_another_organizations_rule_is_not_found(self):
        theirs = self.rule(keywords="oi", action_tags=["x"], organization=self.other_org)
        self.login(self.admin)
        for name in ("automation_runs", "automation_edit", "automation_delete"):
            self.assertEqual(
                self.client.post(reverse(name, args=[theirs.code])).status_code,
                404 if name != "automation_runs" else 405,
            )
        self.assertEqual(
            self.client.get(reverse("automation_runs", args=[theirs.code])).status_code, 404
        )
        self.assertTrue(Automation.objects.filter(pk=theirs.pk).exists())

    def test_the_form_only_offers_our_own_objects(self):
        WebhookSubscription.objects.create(
            organization=self.other_org, url="https://bob.example/segredo-do-bob", events=[]
        )
        self.login(self.admin)
        response = self.client.get(reverse("automation_create"))
        self.assertNotContains(response, "segredo-do-bob")
        self.assertNotContains(response, "Bob Outsider")
        self.assertContains(response, "Ana Agent")
