"""A member of organization A can never reach organization B's data, on any URL.

The sweep walks the whole URL conf, so a new view is covered the day it is added: a URL with
parameters must be listed in ``FOREIGN_KWARGS`` (how to point it at B's object), or the test
fails and says which one is missing.
"""

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import Invitation, Membership, Role
from inbox.models import QuickReply
from tests.base import BaseTestCase

SKIPPED_PREFIXES = ("admin", "accounts", "media", "static", "api/schema", "api/docs")


def walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield route, pattern


def our_urls():
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.startswith(SKIPPED_PREFIXES):
            yield route, pattern


def _foreign_campaign(organization, number):
    from campaigns.models import Campaign, Segment
    from integrations.models import MessageTemplate

    template = MessageTemplate.objects.create(
        organization=organization,
        number=number,
        name="segredo",
        language="pt_BR",
        status="APPROVED",
    )
    campaign = Campaign.objects.create(
        organization=organization,
        name="Clínica Bob Secreta promo",
        number=number,
        template=template,
    )
    segment = Segment.objects.create(organization=organization, name="segredo-do-bob")
    return campaign, segment


class TenantSweepTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.foreign_invitation = Invitation.objects.create(
            organization=cls.other_org, email="x@bob.test", role=Role.AGENT
        )
        cls.foreign_membership = Membership.objects.get(user=cls.outsider)
        cls.foreign_campaign, cls.foreign_segment = _foreign_campaign(
            cls.other_org, cls.other_number
        )
        cls.secret_message = cls.secret_chat.messages.get()
        cls.foreign_quick_reply = QuickReply.objects.create(
            organization=cls.other_org, shortcut="segredo", text="segredo-do-bob"
        )
        from assistants.models import Assistant, KnowledgeSource

        cls.foreign_assistant = Assistant.objects.create(organization=cls.other_org, name="Bob")
        cls.foreign_source = KnowledgeSource.objects.create(
            organization=cls.other_org, assistant=cls.foreign_assistant, kind="text", title="B"
        )

    def foreign_kwargs(self):
        """URL name → kwargs that point at organization B's object."""
        return {
            "chat_detail": {"code": self.secret_chat.code},
            "chat_item": {"code": self.secret_chat.code},
            "thread_older": {"code": self.secret_chat.code},
            "thread_after": {"code": self.secret_chat.code},
            "message_entry": {
                "code": self.secret_chat.code,
                "message_code": self.secret_message.code,
            },
            "send_message": {"code": self.secret_chat.code},
            "send_template": {"code": self.secret_chat.code},
            "react": {"code": self.secret_chat.code},
            "add_note": {"code": self.secret_chat.code},
            "assign": {"code": self.secret_chat.code},
            "set_status": {"code": self.secret_chat.code},
            "set_ai": {"code": self.secret_chat.code},
            "set_tags": {"code": self.secret_chat.code},
            "contact_update": {"code": self.secret_chat.code},
            "quick_reply_delete": {"reply_code": self.foreign_quick_reply.code},
            "organization_switch": {"code": self.other_org.code},
            "member_role": {"membership_id": self.foreign_membership.pk},
            "member_remove": {"membership_id": self.foreign_membership.pk},
            "invitation_revoke": {"code": self.foreign_invitation.code},
            "number_templates_sync": {"code": self.other_number.code},
            "assistant_detail": {"code": self.foreign_assistant.code},
            "assistant_update": {"code": self.foreign_assistant.code},
            "assistant_playground": {"code": self.foreign_assistant.code},
            "knowledge_add": {"code": self.foreign_assistant.code},
            "knowledge_delete": {
                "code": self.foreign_assistant.code,
                "source_code": self.foreign_source.code,
            },
            "chat_analysis": {"code": self.secret_chat.code},
            "chat_analyze": {"code": self.secret_chat.code},
            "transcript_summary": {"code": self.secret_chat.messages.first().code},
            **{
                name: {"code": self.foreign_campaign.code}
                for name in (
                    "campaign_detail",
                    "campaign_launch",
                    "campaign_pause",
                    "campaign_resume",
                    "campaign_cancel",
                    "campaign_test_send",
                    "campaign_ai_regenerate",
                )
            },
            "campaign_ai_edit": {
                "code": self.foreign_campaign.code,
                "contact": self.secret_chat.contact.code,
            },
            "campaign_contact_edit": {"code": self.secret_chat.contact.code},
            "segment_detail": {"code": self.foreign_segment.code},
            "segment_delete": {"code": self.foreign_segment.code},
            **self.api_foreign_kwargs(),
            **self.automation_foreign_kwargs(),
            **self.flow_foreign_kwargs(),
            **{
                name: {"code": self.secret_chat.contact.code}
                for name in ("contact_privacy", "contact_export", "contact_erase")
            },
            # Public by design: the token is the secret; covered in test_signup.
            "invitation_accept": None,
            # Authenticated by the number's own key and signature, not by a session.
            "whatsapp_webhook": None,
        }

    def test_every_object_url_answers_404_for_another_organization(self):
        self.login(self.admin)
        mapping = self.foreign_kwargs()
        checked = 0
        for route, pattern in our_urls():
            if not pattern.pattern.converters:
                continue
            self.assertIn(
                pattern.name, mapping, f"Add {pattern.name} ({route}) to the tenant sweep"
            )
            kwargs = mapping[pattern.name]
            if kwargs is None:
                continue
            url = reverse(pattern.name, kwargs=kwargs)
            for method in ("get", "post"):
                status = getattr(self.client, method)(url).status_code
                with self.subTest(url=url, method=method):
                    self.assertIn(status, (404, 405), f"{method.upper()} {url} answered {status}")
            checked += 1
        self.assertGreaterEqual(checked, 5)
        # Nothing of B's changed.
        self.assertTrue(
            Membership.objects.filter(pk=self.foreign_membership.pk, role=Role.ADMIN).exists()
        )
        self.assertTrue(Invitation.objects.filter(pk=self.foreign_invitation.pk).exists())

    def test_no_page_shows_another_organizations_data(self):
        self.login(self.admin)
        for route, pattern in our_urls():
            if pattern.pattern.converters:
                continue
            url = "/" + route
            response = self.client.get(url)
            with self.subTest(url=url):
                self.assertNotEqual(response.status_code, 500)
                raw = (
                    b"".join(response.streaming_content) if response.streaming else response.content
                )
                body = raw.decode(errors="replace")
                for secret in ("Clínica Bob Secreta", "Zelda Secretcustomer", "segredo-do-bob"):
                    self.assertNotIn(secret, body)

    def automation_foreign_kwargs(self):
        """Automations and drip programs (issue 6)."""
        from campaigns.models import (
            Automation,
            DripEnrolment,
            DripProgram,
            DripQuestion,
            DripStep,
        )

        org = self.other_org
        rule = Automation.objects.create(organization=org, name="segredo-do-bob", trigger="keyword")
        program = DripProgram.objects.create(
            organization=org, name="segredo-do-bob", number=self.other_number
        )
        step = DripStep.objects.create(organization=org, program=program, text="segredo-do-bob")
        question = DripQuestion.objects.create(
            organization=org, program=program, text="segredo-do-bob", rubric="x"
        )
        enrolment = DripEnrolment.objects.create(
            organization=org, program=program, contact=self.secret_chat.contact
        )
        program_kwargs = {"code": program.code}
        return {
            **dict.fromkeys(
                ("automation_runs", "automation_edit", "automation_delete"), {"code": rule.code}
            ),
            **dict.fromkeys(
                ("drip_detail", "drip_step_add", "drip_questions", "drip_enrolments"),
                program_kwargs,
            ),
            "drip_step_delete": {**program_kwargs, "step_code": step.code},
            "drip_question_delete": {**program_kwargs, "question_code": question.code},
            "drip_enrolment_stop": {**program_kwargs, "enrolment_code": enrolment.code},
            # Public by design: the unguessable slug is the secret; covered in test_optin_form.
            "drip_optin": None,
        }

    def flow_foreign_kwargs(self):
        """Flows and their API."""
        from flows import services as flow_services
        from tests.flows.helpers import five_nodes

        flow = flow_services.flow_create(
            organization=self.other_org, name="segredo-do-bob", draft=five_nodes()
        )
        version = flow_services.flow_publish(flow=flow)
        code = {"code": flow.code}
        return {
            **dict.fromkeys(
                (
                    "flow_edit",
                    "flow_save",
                    "flow_check",
                    "flow_publish",
                    "flow_unpublish",
                    "flow_duplicate",
                    "flow_export",
                    "api_flow",
                    "api_flow_export",
                    "api_flow_start",
                ),
                code,
            ),
            "flow_rollback": {**code, "number": version.number},
        }

    def api_foreign_kwargs(self):
        """The integrator API, API keys and outgoing webhooks (issue 7)."""
        from accounts.api_auth import api_key_create
        from integrations.models import WebhookDelivery, WebhookSubscription

        key, _secret = api_key_create(
            organization=self.other_org, name="segredo", scopes=[], created_by=None
        )
        subscription = WebhookSubscription.objects.create(
            organization=self.other_org, url="https://bob.example/hook", events=["chat.created"]
        )
        delivery = WebhookDelivery.objects.create(
            organization=self.other_org, subscription=subscription, event_type="chat.created"
        )
        chat = {"code": self.secret_chat.code}
        contact = {"code": self.secret_chat.contact.code}
        return {
            "api_key_revoke": {"code": key.code},
            "webhook_detail": {"code": subscription.code},
            "webhook_toggle": {"code": subscription.code},
            "webhook_delete": {"code": subscription.code},
            "webhook_delivery_resend": {"code": delivery.code},
            "api_webhook": {"code": subscription.code},
            "api_number_health": {"code": self.other_number.code},
            "api_templates_sync": {"code": self.other_number.code},
            "api_contact": contact,
            "api_contact_opt_in": contact,
            "api_contact_opt_out": contact,
            **dict.fromkeys(
                (
                    "api_chat",
                    "api_chat_assign",
                    "api_chat_status",
                    "api_chat_ai",
                    "api_chat_tags",
                    "api_chat_messages",
                ),
                chat,
            ),
            "api_contact_export": contact,
            "api_contact_erase": contact,
            **dict.fromkeys(
                ("api_assistant", "api_assistant_sources", "api_assistant_ask"),
                {"code": self.foreign_assistant.code},
            ),
            "api_assistant_source": {
                "code": self.foreign_assistant.code,
                "source_code": self.foreign_source.code,
            },
            **dict.fromkeys(
                (
                    "api_campaign",
                    "api_campaign_schedule",
                    "api_campaign_pause",
                    "api_campaign_resume",
                    "api_campaign_cancel",
                    "api_campaign_stats",
                    "api_campaign_recipients",
                ),
                {"code": self.foreign_campaign.code},
            ),
            "api_segment": {"code": self.foreign_segment.code},
        }
