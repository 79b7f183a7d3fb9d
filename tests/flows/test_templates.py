"""The ready flows: valid in every language, usable from the list page, and the demo clinic
has one published that answers "menu"."""

from django.core.management import call_command
from django.urls import reverse

from accounts.models import Organization
from flows import definition, templates_library
from flows.models import Flow, FlowRun
from integrations.models import WhatsAppNumber
from tests.flows.helpers import FlowTestCase


class TemplateTests(FlowTestCase):
    def test_every_template_is_publishable_in_every_language(self):
        for key, _label in templates_library.choices():
            for language in templates_library.LANGUAGES:
                with self.subTest(key=key, language=language):
                    data = templates_library.template_definition(key, language)
                    self.assertEqual(
                        [p for p in definition.check(data, for_publish=True) if p.blocking], []
                    )

    def test_a_manager_starts_from_a_template_in_spanish(self):
        self.login(self.manager)
        response = self.client.post(
            reverse("flow_create"), {"template": "lead_qualification", "language": "es"}
        )
        flow = Flow.objects.get(organization=self.org)
        self.assertRedirects(response, reverse("flow_edit", args=[flow.code]))
        self.assertEqual(flow.name, "Calificación de leads")
        self.assertIsNone(flow.published)

    def test_the_lead_qualification_flow_tags_a_hot_lead_and_hands_off(self):
        flow = templates_library.flow_from_template(
            organization=self.org, key="lead_qualification", language="pt-br"
        )
        flow = self.published_flow(flow.draft, name=flow.name)
        chat = self.receive("orçamento").chat
        self.receive("Maria Souza")
        self.receive("Implante")
        self.receive("1")
        chat.refresh_from_db()
        chat.contact.refresh_from_db()
        self.assertEqual(chat.contact.name, "Maria Souza")
        self.assertEqual(chat.contact.attributes["treatment"], "Implante")
        self.assertIn("lead-quente", chat.tags)
        self.assertEqual(FlowRun.objects.get(chat=chat).status, FlowRun.Status.HANDED_OFF)

    def test_the_demo_clinic_has_a_published_welcome_flow(self):
        call_command("demo")
        call_command("flow_demo")
        call_command("flow_demo")  # idempotent
        org = Organization.objects.get(slug="clinica-sorriso")
        flow = Flow.objects.get(organization=org)
        self.assertEqual(flow.name, "Boas-vindas e menu")
        self.assertEqual(flow.published.number, 1)
        self.assertTrue(WhatsAppNumber.objects.filter(organization=org).exists())
