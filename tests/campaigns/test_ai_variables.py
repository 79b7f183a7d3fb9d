"""Template variables written per recipient by an assistant: chosen on the campaign form,
previewed (written in the background), edited or rewritten by staff, length-checked, and sent in
the template, against the real local OpenAI stub and the WhatsApp sandbox."""

import json
from collections import Counter

from django.urls import reverse

from assistants.models import AISettings, Assistant, UsageRecord
from campaigns import dispatch, services
from campaigns.dispatch import Dispatcher, Options
from campaigns.models import Campaign
from integrations.models import WhatsAppNumber
from tests.assistants.openai_stub import OpenAIStub
from tests.base import BaseTestCase
from tests.campaigns.helpers import SandboxMixin, make_campaign, make_contacts, make_template

INSTRUCTION = "one friendly sentence for this contact from their facts"
LONG = "muito " * 45  # 270 characters without a sentence end


def facts_of(body: dict) -> dict:
    user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    return json.loads(user.split("Contact facts (DATA): ", 1)[1])


def friendly(body: dict) -> dict:
    """The stub's answer: a sentence about the contact, with the stray spaces and line break a
    model may add (WhatsApp refuses line breaks in parameters)."""
    facts = facts_of(body)
    return {"content": f'  "{facts["first_name"]}, que bom ter você por aqui!"\n'}


class AIVariableTestCase(SandboxMixin, BaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stub = OpenAIStub().start()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.stub.stop()

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        WhatsAppNumber.objects.filter(pk=cls.number.pk).update(waba_id="900111")
        cls.number.refresh_from_db()
        cls.template = make_template(cls.number, "appointment_reminder")
        AISettings.objects.create(organization=cls.org, api_key="sk-test", timeout_seconds=2.0)
        cls.assistant = Assistant.objects.create(
            organization=cls.org,
            name="Sofia",
            instructions="Clínica Alice: odontologia familiar, tom acolhedor.",
            model="gpt-4o-mini",
        )

    def setUp(self):
        self.sandbox_number(self.number)
        AISettings.objects.filter(organization=self.org).update(base_url=self.stub.base_url)
        self.stub.queue.clear()
        self.stub.requests.clear()
        self.stub.default = friendly

    def variables(self, **first):
        return {
            "body": [
                {
                    "source": "assistant",
                    "assistant": str(self.assistant.code),
                    "value": INSTRUCTION,
                    "fallback": "",
                    **first,
                },
                {"source": "fixed", "value": "Dra. Ana"},
                {"source": "fixed", "value": "12/05"},
                {"source": "fixed", "value": "10h"},
            ],
            "conversion": {"kind": "reply", "value": ""},
        }

    def write_previews(self, campaign):
        with self.captureOnCommitCallbacks(execute=True):
            services.ai_samples_request(campaign=campaign)
        campaign.refresh_from_db()
        return services.ai_samples(campaign)

    def send(self, campaign):
        services.campaign_launch(campaign=campaign)
        self.assertTrue(dispatch.run_start(campaign.pk))
        outcome = Dispatcher(campaign.pk, Options(idle_sleep=0.02, slice_seconds=30)).run()
        self.assertEqual(outcome, "done")
        campaign.refresh_from_db()
        return campaign

    def sent_texts(self) -> dict[str, str]:
        """The first body parameter of every template the sandbox received, by phone."""
        sent = {}
        for item in self.sandbox.app.messages(self.number.phone_number_id, direction="outbound"):
            template = item["message"]["template"]
            body = next(c for c in template["components"] if c["type"] == "body")
            sent[item["to"]] = body["parameters"][0]["text"]
        return sent


class CampaignFormTests(AIVariableTestCase):
    def test_the_form_chooses_an_assistant_and_the_previews_are_written_in_the_background(self):
        contacts = make_contacts(self.org, 3)
        self.login(self.manager)
        form = self.client.get(
            reverse("campaign_create"), {"template": self.template.pk}, HTTP_HX_REQUEST="true"
        )
        self.assertContains(form, "Written by an assistant")
        self.assertContains(form, f'value="{self.assistant.code}"')
        data = {
            "name": "Reativação",
            "number": self.number.pk,
            "template": self.template.pk,
            "schedule": "now",
            "time_zone_mode": "organization",
            "pace": "rate",
            "rate_per_second": 20,
            "stagger_min_seconds": 60,
            "stagger_max_seconds": 120,
            "quiet_action": "defer",
            "require_opt_in": "on",
            "conversion": "tag",
            "conversion_value": "agendou",
            "var_body_0_source": "assistant",
            "var_body_0_value": INSTRUCTION,
            "var_body_1_source": "fixed",
            "var_body_1_value": "Dra. Ana",
            "var_body_2_source": "fixed",
            "var_body_2_value": "12/05",
            "var_body_3_source": "fixed",
            "var_body_3_value": "10h",
        }
        response = self.client.post(reverse("campaign_create"), data)
        self.assertContains(response, "Choose the assistant.")
        self.assertEqual(self.stub.chat_requests(), [])
        with self.captureOnCommitCallbacks(execute=True):  # the background task runs here
            response = self.client.post(
                reverse("campaign_create"),
                {**data, "var_body_0_assistant": str(self.assistant.code)},
            )
        campaign = Campaign.objects.get(name="Reativação")
        self.assertRedirects(response, reverse("campaign_detail", args=[campaign.code]))
        self.assertEqual(
            campaign.variables["body"][0],
            {
                "source": "assistant",
                "assistant": str(self.assistant.code),
                "value": INSTRUCTION,
                "fallback": "",
            },
        )
        self.assertEqual(campaign.variables["conversion"], {"kind": "tag", "value": "agendou"})
        # One model call per sampled contact, with the contact's facts but not their phone.
        requests = self.stub.chat_requests()
        self.assertEqual(len(requests), 3)
        prompt = json.dumps(requests[0]["messages"], ensure_ascii=False)
        self.assertIn(INSTRUCTION, prompt)
        self.assertIn("at most 200 characters", prompt)
        self.assertEqual(facts_of(requests[0])["first_name"], "Cliente")
        self.assertNotIn(contacts[0].wa_id, prompt)
        page = self.client.get(reverse("campaign_detail", args=[campaign.code]))
        self.assertContains(page, "Assistant-written text")
        self.assertContains(
            page, "Olá Cliente, que bom ter você por aqui!, lembramos da sua consulta com Dra. Ana"
        )
        self.assertEqual(
            UsageRecord.objects.filter(assistant=self.assistant, kind="campaign").count(), 1
        )

    def test_another_organizations_assistant_is_not_a_choice(self):
        foreign = Assistant.objects.create(organization=self.other_org, name="Intrusa")
        self.login(self.manager)
        response = self.client.post(
            reverse("campaign_create"),
            {
                "name": "X",
                "number": self.number.pk,
                "template": self.template.pk,
                "var_body_0_source": "assistant",
                "var_body_0_value": INSTRUCTION,
                "var_body_0_assistant": str(foreign.code),
            },
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("var_body_0_assistant", response.context["form"].errors)
        self.assertNotContains(response, "Intrusa")


class PreviewAndSendTests(AIVariableTestCase):
    def test_staff_edit_and_rewrite_previews_and_the_sent_templates_carry_the_texts(self):
        contacts = make_contacts(self.org, 7)
        campaign = make_campaign(self.org, self.number, self.template, variables=self.variables())
        samples = self.write_previews(campaign)
        self.assertEqual(len(samples), services.AI_SAMPLE_SIZE)
        first, second = str(contacts[0].code), str(contacts[1].code)
        self.assertEqual(samples[first]["texts"], {"body:0": "Cliente, que bom ter você por aqui!"})

        self.login(self.manager)
        edit_url = reverse("campaign_ai_edit", args=[campaign.code, contacts[0].code])
        response = self.client.post(edit_url, {"text_body_0": "x" * 201}, follow=True)
        self.assertContains(response, "Text not saved")
        response = self.client.post(
            edit_url, {"text_body_0": "Maria,\npreparamos um horário só para você."}, follow=True
        )
        self.assertContains(response, "Text saved")
        self.assertContains(response, "Edited")
        # Rewriting one contact's text asks the model again for that contact only.
        self.stub.script({"content": "Cliente, sentimos sua falta na clínica!"})
        before = len(self.stub.chat_requests())
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(
                reverse("campaign_ai_regenerate", args=[campaign.code]), {"contact": second}
            )
        self.assertEqual(len(self.stub.chat_requests()), before + 1)
        # Operators read the previews but cannot change them.
        self.login(self.operator)
        self.assertEqual(self.client.post(edit_url, {"text_body_0": "oi"}).status_code, 403)
        # Outside the sample: 404.
        outside = reverse("campaign_ai_edit", args=[campaign.code, contacts[6].code])
        self.login(self.manager)
        self.assertEqual(self.client.post(outside, {"text_body_0": "oi"}).status_code, 404)

        before = len(self.stub.chat_requests())
        campaign = self.send(campaign)
        # Only the two contacts outside the sample were written at expansion.
        self.assertEqual(len(self.stub.chat_requests()), before + 2)
        self.assertEqual(campaign.sent, 7)
        sent = self.sent_texts()
        self.assertEqual(sent[contacts[0].wa_id], "Maria, preparamos um horário só para você.")
        self.assertEqual(sent[contacts[1].wa_id], "Cliente, sentimos sua falta na clínica!")
        self.assertEqual(sent[contacts[6].wa_id], "Cliente, que bom ter você por aqui!")
        recipient = campaign.recipients.get(contact=contacts[0])
        self.assertEqual(
            recipient.components[0]["parameters"][0]["text"],
            "Maria, preparamos um horário só para você.",
        )
        self.assertIn(
            "Olá Maria, preparamos um horário só para você., lembramos", recipient.message.text
        )
        # Once running, the texts are fixed.
        response = self.client.post(edit_url, {"text_body_0": "tarde demais"}, follow=True)
        self.assertContains(response, "already written")

    def test_texts_are_length_checked_and_failures_skip_with_the_reason(self):
        contacts = make_contacts(self.org, 4)
        answers = {
            "Cliente 0": {"content": LONG},
            "Cliente 1": {"content": "Cliente, temos novidades. " + LONG},
            "Cliente 2": {"status": 500, "error": "model exploded"},
            "Cliente 3": {"content": "Cliente, até breve!"},
        }
        self.stub.default = lambda body: answers[facts_of(body)["name"]]
        campaign = self.send(
            make_campaign(self.org, self.number, self.template, variables=self.variables())
        )
        outcome = {r.contact_id: r for r in campaign.recipients.all()}
        too_long = outcome[contacts[0].pk]
        self.assertEqual((too_long.status, too_long.reason), ("skipped", "missing_variable"))
        self.assertIn("is too long", too_long.error_detail)
        self.assertIn("at most 200", too_long.error_detail)
        failed = outcome[contacts[2].pk]
        self.assertEqual((failed.status, failed.reason), ("skipped", "missing_variable"))
        self.assertIn("500", failed.error_detail)
        sent = self.sent_texts()
        self.assertEqual(sent[contacts[1].wa_id], "Cliente, temos novidades.")  # cut at a sentence
        self.assertEqual(sent[contacts[3].wa_id], "Cliente, até breve!")
        self.assertEqual(len(sent), 2)
        failures = self.client_page_failures(campaign)
        self.assertEqual(failures, Counter({("skipped", "missing_variable"): 2}))

    def test_the_fallback_fills_in_when_the_assistant_cannot_write(self):
        contacts = make_contacts(self.org, 2)
        AISettings.objects.filter(organization=self.org).update(api_key="")  # offline
        campaign = make_campaign(
            self.org, self.number, self.template, variables=self.variables(fallback="tudo bem")
        )
        samples = self.write_previews(campaign)
        self.assertIn("needs an AI key", samples[str(contacts[0].code)]["errors"]["body:0"])
        self.login(self.manager)
        page = self.client.get(reverse("campaign_detail", args=[campaign.code]))
        self.assertContains(page, "needs an AI key")
        campaign = self.send(campaign)
        self.assertEqual(set(self.sent_texts().values()), {"tudo bem"})
        self.assertEqual(self.stub.chat_requests(), [])

    def client_page_failures(self, campaign) -> Counter:
        self.login(self.manager)
        page = self.client.get(reverse("campaign_detail", args=[campaign.code]))
        return Counter(
            {(row["status"], row["reason"]): row["n"] for row in page.context["failures"]}
        )
