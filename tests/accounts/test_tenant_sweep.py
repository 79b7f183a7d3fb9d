"""A member of organization A can never reach organization B's data, on any URL.

The sweep walks the whole URL conf, so a new view is covered the day it is added: a URL with
parameters must be listed in ``FOREIGN_KWARGS`` (how to point it at B's object), or the test
fails and says which one is missing.
"""

import json
from urllib.parse import urlencode

from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, TransactionTestCase
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts import access
from accounts.admin import TenantAdmin
from accounts.middleware import SESSION_KEY
from accounts.models import Invitation, Membership, Role
from config.asgi import application
from inbox import services as inbox_services
from inbox.media import media_file_save
from inbox.models import Media, QuickReply
from tests.base import BaseTestCase, make_chat, make_org, make_user
from tests.campaigns.helpers import inbound
from tests.tenancy import cross_tenant_links, missing_kwargs, tenant_rows

SKIPPED_PREFIXES = ("admin", "accounts", "static", "api/schema", "api/docs")


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


class TenantSweepFixtures(BaseTestCase):
    """Organization B's objects of every kind, and how each URL points at them."""

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
        from campaigns.models import ContactImport

        cls.foreign_import = ContactImport.objects.create(
            organization=cls.other_org, path="contact-imports/x.upload", total_rows=1
        )
        cls.secret_message = cls.secret_chat.messages.get()
        # A real stored file, so a view that forgot the check would answer 200, not 404.
        cls.foreign_media = Media(
            organization=cls.other_org,
            message=cls.secret_message,
            mime_type="image/png",
            filename="segredo-do-bob.png",
        )
        media_file_save(cls.foreign_media, b"segredo-do-bob")
        cls.foreign_media.save()
        cls.foreign_quick_reply = QuickReply.objects.create(
            organization=cls.other_org, shortcut="segredo", text="segredo-do-bob"
        )
        from django.utils import timezone

        from inbox.models import SavedView, ScheduledMessage

        cls.foreign_scheduled = ScheduledMessage.objects.create(
            organization=cls.other_org,
            chat=cls.secret_chat,
            author=cls.outsider,
            text="segredo-do-bob",
            send_at=timezone.now() + timezone.timedelta(days=1),
        )
        from accounts.models import Team

        cls.foreign_team = Team.objects.create(organization=cls.other_org, name="segredo")
        cls.foreign_saved_view = SavedView.objects.create(
            organization=cls.other_org, user=cls.outsider, name="segredo", query="status=any"
        )
        from assistants.models import Assistant, KnowledgeSource

        cls.foreign_assistant = Assistant.objects.create(organization=cls.other_org, name="Bob")
        cls.foreign_source = KnowledgeSource.objects.create(
            organization=cls.other_org, assistant=cls.foreign_assistant, kind="text", title="B"
        )

    @classmethod
    def tearDownClass(cls):
        cls.foreign_media.file.delete(save=False)
        super().tearDownClass()

    def test_media_files_are_served_by_no_path_and_to_no_stranger(self):
        """Files are reached only through the authenticated view, never by their storage key."""
        key = self.foreign_media.file.name
        for user in (None, self.admin, self.outsider):
            self.client.logout()
            if user:
                self.login(user)
            for path in (f"/media/{key}", f"/{key}", f"/media/media/{key.rsplit('/', 1)[-1]}"):
                with self.subTest(user=user, path=path):
                    self.assertEqual(self.client.get(path).status_code, 404)
        self.client.logout()
        anonymous = self.client.get(self.foreign_media.url)
        self.assertEqual(anonymous.status_code, 302)
        self.assertNotIn(b"segredo", anonymous.content)
        self.login(self.outsider)  # Bob's own admin does get it
        response = self.client.get(self.foreign_media.url)
        self.assertEqual(b"".join(response.streaming_content), b"segredo-do-bob")

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
            "chat_snooze": {"code": self.secret_chat.code},
            "chat_read": {"code": self.secret_chat.code},
            "send_rich": {"code": self.secret_chat.code},
            "chat_priority": {"code": self.secret_chat.code},
            "send_later": {"code": self.secret_chat.code},
            "scheduled_cancel": {
                "code": self.secret_chat.code,
                "item_code": self.foreign_scheduled.code,
            },
            "saved_view_delete": {"view_code": self.foreign_saved_view.code},
            "team_update": {"code": self.foreign_team.code},
            "team_delete": {"code": self.foreign_team.code},
            "member_capacity": {"membership_id": self.foreign_membership.pk},
            "media_file": {"code": self.foreign_media.code},
            "organization_switch": {"code": self.other_org.code},
            "member_role": {"membership_id": self.foreign_membership.pk},
            "member_remove": {"membership_id": self.foreign_membership.pk},
            "invitation_revoke": {"code": self.foreign_invitation.code},
            "number_templates_sync": {"code": self.other_number.code},
            "number_detail": {"code": self.other_number.code},
            "number_edit": {"code": self.other_number.code},
            "number_webhook_test": {"code": self.other_number.code},
            "number_refresh": {"code": self.other_number.code},
            "number_toggle": {"code": self.other_number.code},
            "number_delete": {"code": self.other_number.code},
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
            "campaign_contact_import_detail": {"code": self.foreign_import.code},
            "campaign_contact_import_errors": {"code": self.foreign_import.code},
            **self.api_foreign_kwargs(),
            **self.automation_foreign_kwargs(),
            **self.appointment_foreign_kwargs(),
            **self.flow_foreign_kwargs(),
            **{
                name: {"code": self.secret_chat.contact.code}
                for name in ("contact_privacy", "contact_export", "contact_erase")
            },
            # Public by design: the token is the secret; covered in test_signup.
            "invitation_accept": None,
            # Authenticated by the number's own key and signature, not by a session.
            "whatsapp_webhook": None,
            **self.web_number_foreign_kwargs(),
        }

    def web_number_foreign_kwargs(self):
        """WhatsApp Web numbers (integrations.views_web)."""
        from integrations import web

        code = {"code": web.web_number_create(organization=self.other_org, name="Bob web").code}
        names = ("connect", "state", "reconnect", "logout", "text_save")
        return {
            **{f"web_number_{name}": code for name in names},
            "web_sandbox_pair": code,
            "web_sandbox_send": code,
            # Authenticated by the number's own key and secret, not by a session.
            "evolution_webhook": None,
            "evolution_webhook_secret": None,
        }

    def appointment_foreign_kwargs(self):
        """The agenda (appointments app)."""
        from accounts.models import Holiday
        from appointments import services as appointment_services
        from appointments.models import AgendaException
        from tests.appointments.helpers import at, make_agenda, next_weekday

        agenda = make_agenda(self.other_org)
        appointment = appointment_services.appointment_book(
            service=agenda["cleaning"],
            professional=agenda["ana"],
            starts_at=at(next_weekday(2), 9),
            channel="staff",
            customer_name="segredo-do-bob",
        )
        self.foreign_appointment = appointment
        exception = AgendaException.objects.create(
            organization=self.other_org,
            professional=agenda["ana"],
            starts_at=at(next_weekday(3), 9),
            ends_at=at(next_weekday(3), 10),
        )
        holiday = Holiday.objects.create(organization=self.other_org, date=next_weekday(4))
        code = {"code": appointment.code}
        return {
            **dict.fromkeys(
                ("appointment_detail", "appointment_move", "appointment_visit_note"), code
            ),
            **dict.fromkeys(
                ("api_appointment", "api_appointment_reschedule", "api_appointment_cancel"), code
            ),
            "appointment_status": {**code, "action": "cancel"},
            "appointments_ics_revoke": {"code": agenda["ana"].code},
            "agenda_settings_service": {"code": agenda["cleaning"].code},
            "agenda_settings_professional": {"code": agenda["ana"].code},
            "agenda_settings_exception_add": {"code": agenda["ana"].code},
            "agenda_settings_exception_delete": {"code": agenda["ana"].code, "pk": exception.pk},
            "agenda_settings_holiday_delete": {"pk": holiday.pk},
            # Public by design: the unguessable token is the secret; covered in test_calendar.
            "appointments_ics_feed": None,
        }

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
            "api_drip_enrolments": program_kwargs,
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
                    "flow_delete",
                    "flow_media_upload",
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


class TenantSweepTests(TenantSweepFixtures):
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


# --- Every role, foreign ids in query strings and bodies, Django admin, the websocket -------------

SECRETS = ("Clínica Bob Secreta", "Zelda Secretcustomer", "segredo-do-bob")
# Views that change who the session is (they are covered by their own tests).
SESSION_URLS = ("organization_create", "organization_switch")


def _body(response) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode(errors="replace")


class EveryRoleTenantSweepTests(TenantSweepFixtures):
    """The sweep above, for every role of the role matrix, with foreign ids everywhere a
    request can carry them: the path, the query string and the POST body."""

    def test_every_role_is_a_role_of_the_matrix(self):
        self.assertEqual(set(self.members), set(access.MATRIX))

    def test_every_role_gets_the_same_answer_for_another_organizations_object_as_for_none(self):
        mapping = self.foreign_kwargs()
        before = tenant_rows(self.other_org)
        for role, user in self.members.items():
            self.login(user)
            for route, pattern in our_urls():
                kwargs = mapping.get(pattern.name) if pattern.pattern.converters else None
                if kwargs is None:
                    continue
                url = reverse(pattern.name, kwargs=kwargs)
                nowhere = reverse(pattern.name, kwargs=missing_kwargs(kwargs))
                for method in ("get", "post"):
                    response = getattr(self.client, method)(url)
                    expected = getattr(self.client, method)(nowhere).status_code
                    with self.subTest(role=role, url=url, method=method):
                        # 403 only when the role may not use the page at all (same answer
                        # as for an object that does not exist: nothing is revealed).
                        self.assertIn(response.status_code, (403, 404, 405))
                        self.assertEqual(response.status_code, expected)
                        for secret in SECRETS:
                            self.assertNotIn(secret, _body(response))
        self.assertEqual(tenant_rows(self.other_org), before)

    def foreign_values(self, *, by: str) -> dict:
        """Every parameter name our views and forms read, set to organization B's objects:
        by database id (forms' model choices) or by public code (views' lookups)."""
        from campaigns.models import Automation, DripProgram

        rule = Automation.objects.filter(organization=self.other_org).first()
        program = DripProgram.objects.filter(organization=self.other_org).first()
        objects = {
            "chat": self.secret_chat,
            "contact": self.secret_chat.contact,
            "list": self.foreign_segment,
            "segment": self.foreign_segment,
            "campaign": self.foreign_campaign,
            "trigger_campaign": self.foreign_campaign,
            "number": self.other_number,
            "default_for_numbers": self.other_number,
            "template": self.foreign_campaign.template,
            "action_template": self.foreign_campaign.template,
            "assistant": self.foreign_assistant,
            "handoff_target": self.outsider,
            "assignee": self.outsider,
            "action_assignee": self.outsider,
            "actor": self.outsider,
            "user": self.outsider,
            "membership": self.foreign_membership,
            "organization": self.other_org,
            "message": self.secret_message,
            "reply": self.foreign_quick_reply,
            "automation": rule,
            "action_drip": program,
            "program": program,
        }
        values = {
            name: str(getattr(obj, "code", obj.pk)) if by == "code" else str(obj.pk)
            for name, obj in objects.items()
            if obj is not None
        }
        # Plausible values for the rest, so a form gets as far as the foreign ids.
        return {
            "name": "Hijack",
            "text": "Hijack",
            "body": "Hijack",
            "tags": "hijack",
            "add": "hijack",
            "trigger": "new_contact",
            "kind": "static",
            "schedule": "now",
            "status": "resolved",
            "confirm": "on",
            "enabled": "on",
            "q": "Zelda",  # B's customer's first name
            "tag": "vip",
            **values,
        }

    def own_kwargs(self) -> dict:
        """Pages of our own objects that take other objects' ids in their bodies."""
        chat = {"code": self.other_chat.code}
        return {
            **dict.fromkeys(
                ("assign", "send_template", "set_tags", "contact_update", "add_note"), chat
            ),
            "campaign_contact_edit": {"code": self.other_chat.contact.code},
        }

    def test_foreign_ids_in_query_strings_and_bodies_reach_nothing(self):
        self.foreign_kwargs()  # B's automations, drips, keys and webhooks exist too
        before = tenant_rows(self.other_org)
        own = self.own_kwargs()
        bodies = [self.foreign_values(by="pk"), self.foreign_values(by="code")]
        for role, user in self.members.items():
            self.login(user)
            for route, pattern in our_urls():
                if pattern.name in SESSION_URLS:
                    continue
                if pattern.pattern.converters:
                    if pattern.name not in own:
                        continue
                    url = reverse(pattern.name, kwargs=own[pattern.name])
                else:
                    url = "/" + route
                for data in bodies:
                    for response in (
                        self.client.get(url, data),
                        self.client.post(url, data),
                        self.client.post(f"{url}?{urlencode(data)}", data),
                    ):
                        with self.subTest(
                            role=role, url=url, method=response.request["REQUEST_METHOD"]
                        ):
                            self.assertLess(response.status_code, 500)
                            for secret in SECRETS:
                                self.assertNotIn(secret, _body(response))
                self.login(user)  # a page may have signed out or switched; come back
        self.assertEqual(cross_tenant_links(self.org, self.other_org), [])
        self.assertEqual(tenant_rows(self.other_org), before)


class AdminTenantSweepTests(TenantSweepFixtures):
    """Django admin, for an organization admin with staff access: another organization's rows
    are in no list, no search and no filter, and their pages neither open nor act."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.admin.is_staff = True
        cls.admin.save()

    def foreign_objects(self):
        """(model, one of B's rows) for every model in admin with a row of B's."""
        self.foreign_kwargs()  # creates B's automations, drips, keys, webhooks
        for model, model_admin in admin.site._registry.items():
            if model is get_user_model():  # people are platform-wide: B's admin
                queryset = model._default_manager.filter(memberships__organization=self.other_org)
            elif not isinstance(model_admin, TenantAdmin):
                continue  # platform tables: see test_platform_tables_are_closed
            elif model_admin.tenant_path == "":
                queryset = model._default_manager.filter(pk=self.other_org.pk)
            else:
                queryset = model._default_manager.filter(
                    **{model_admin.tenant_path: self.other_org}
                )
            obj = queryset.order_by("pk").first()
            if obj is not None:
                yield model, obj

    def test_platform_tables_are_closed_to_an_organization_admin(self):
        self.login(self.admin)
        for model, model_admin in admin.site._registry.items():
            if isinstance(model_admin, TenantAdmin):
                continue
            info = (model._meta.app_label, model._meta.model_name)
            url = reverse(f"admin:{info[0]}_{info[1]}_changelist")
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 403)

    def test_another_organizations_rows_open_nowhere_in_admin(self):
        self.login(self.admin)
        checked = 0
        for model, obj in self.foreign_objects():
            info = (model._meta.app_label, model._meta.model_name)
            for view in ("change", "history", "delete"):
                url = reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj.pk])
                response = self.client.get(url)
                with self.subTest(url=url):
                    self.assertIn(response.status_code, (302, 403, 404))
                    for secret in SECRETS:
                        self.assertNotIn(secret, _body(response))
            self.client.post(
                reverse(f"admin:{info[0]}_{info[1]}_delete", args=[obj.pk]), {"post": "yes"}
            )
            changelist = reverse(f"admin:{info[0]}_{info[1]}_changelist")
            self.client.post(
                changelist,
                {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
            )
            for query in (
                {"q": "Zelda"},
                {"q": "segredo"},
                {"organization__id__exact": self.other_org.pk},
                {"organization": self.other_org.pk},
                {"id__exact": obj.pk},
            ):
                response = self.client.get(changelist, query)
                with self.subTest(url=changelist, query=query):
                    self.assertIn(response.status_code, (200, 302, 403))
                    body = _body(response)
                    self.assertNotIn(f"/{obj.pk}/change/", body)
                    for secret in SECRETS:
                        self.assertNotIn(secret, body)
            with self.subTest(model=model._meta.label):
                self.assertTrue(model._default_manager.filter(pk=obj.pk).exists())
            checked += 1
        self.assertGreaterEqual(checked, 20)


class WebsocketTenantSweepTests(TransactionTestCase):
    """The live socket of every role of organization A hears nothing of organization B: not
    B's chats' events, not when naming B's chat in a presence message, not when the session
    names B as its organization."""

    def setUp(self):
        self.org, self.number = make_org("Clínica Alice", "clinica-alice", "111")
        self.other_org, self.other_number = make_org("Clínica Bob Secreta", "clinica-bob", "222")
        self.members = {}
        for role in access.MATRIX:
            user = make_user(f"{role}@alice.test")
            Membership.objects.create(user=user, organization=self.org, role=role)
            self.members[role] = user
        self.outsider = make_user("bob@bob.test")
        Membership.objects.create(user=self.outsider, organization=self.other_org, role=Role.ADMIN)
        self.secret_chat = make_chat(
            self.other_org, self.other_number, "5511911111111", "Zelda Secretcustomer",
            self.outsider, text="segredo-do-bob",
        )  # fmt: skip

    def cookie(self, user, organization=None) -> bytes:
        client = Client()
        client.force_login(user)
        if organization is not None:
            session = client.session
            session[SESSION_KEY] = str(organization.code)
            session.save()
        return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()

    def test_no_role_hears_another_organizations_chat(self):
        # Every member's session claims organization B, as a tampered session would.
        cookies = {role: self.cookie(user, self.other_org) for role, user in self.members.items()}
        outsider_cookie = self.cookie(self.outsider)
        chat_code = str(self.secret_chat.code)

        async def scenario():
            sockets = {}
            for role, cookie in cookies.items():
                socket = WebsocketCommunicator(
                    application,
                    f"/ws/live/?organization={self.other_org.code}&chat={chat_code}",
                    headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)],
                )
                connected, _ = await socket.connect()
                self.assertTrue(connected)
                hello = await socket.receive_json_from()
                self.assertEqual(hello["organization"], str(self.org.code), role)
                sockets[role] = socket
            bob = WebsocketCommunicator(
                application,
                "/ws/live/",
                headers=[(b"origin", b"http://testserver"), (b"cookie", outsider_cookie)],
            )
            self.assertTrue((await bob.connect())[0])
            await bob.receive_json_from()
            # Naming B's chat in a presence message reaches no one.
            for socket in sockets.values():
                await socket.send_json_to(
                    {"type": "presence", "chat": chat_code, "state": "typing"}
                )
            self.assertTrue(await bob.receive_nothing(timeout=0.3))
            # B's chat's events (a customer writes; B's admin sees it) reach no socket of A.
            await sync_to_async(self.customer_writes)()
            event = await bob.receive_json_from(timeout=3)
            self.assertIn(chat_code, json.dumps(event))
            for role, socket in sockets.items():
                with self.subTest(role=role):
                    self.assertTrue(await socket.receive_nothing(timeout=0.3))
            for socket in [*sockets.values(), bob]:
                await socket.disconnect()

        async_to_sync(scenario)()

    def customer_writes(self):
        with transaction.atomic():  # its live events go out on commit, as in production
            inbox_services.message_receive(
                number=self.other_number,
                inbound=inbound(self.other_number, "5511911111111", "segredo-do-bob de novo"),
            )
