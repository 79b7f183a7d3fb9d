"""The numbers settings page: synced templates and the "Sync templates" action; credentials
(access token, app secret) never appear in pages, the admin, or logs."""

import logging
from datetime import timedelta

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from inbox import services as inbox_services
from integrations.models import MessageTemplate
from tests.integrations.test_webhook_inbound import SandboxTestCase

TOKEN = "EAAG-very-secret-access-token-9f8e7d"
SECRET = "app-secret-never-shown-4c3b2a"


class SecretsTestCase(SandboxTestCase):
    def setUp(self):
        self.number.access_token = TOKEN
        self.number.app_secret = SECRET
        self.number.save()
        super().setUp()

    def assert_no_secret(self, text: str):
        self.assertNotIn(TOKEN, text)
        self.assertNotIn(SECRET, text)
        self.assertNotIn(TOKEN[-8:], text)  # nor a long tail of it


class TemplateSyncTests(SecretsTestCase):
    url_name = "number_templates_sync"

    def sync_url(self, number=None):
        return reverse(self.url_name, kwargs={"code": (number or self.number).code})

    def test_an_admin_syncs_templates_and_sees_them(self):
        self.login(self.admin)
        response = self.client.post(self.sync_url(), follow=True)
        self.assertRedirects(response, reverse("number_list"))
        self.assertContains(response, "templates synced")
        self.assertContains(response, "appointment_reminder")
        self.assertContains(response, "APPROVED")
        template = MessageTemplate.objects.get(number=self.number, name="appointment_reminder")
        self.assertEqual(template.organization, self.org)
        self.assertEqual(template.language, "pt_BR")
        self.assertTrue(template.components)

    def test_a_template_gone_from_the_waba_is_marked_deleted(self):
        MessageTemplate.objects.create(
            organization=self.org, number=self.number, name="old_one", language="pt_BR"
        )
        self.login(self.admin)
        self.client.post(self.sync_url())
        self.assertEqual(MessageTemplate.objects.get(name="old_one").status, "DELETED")

    def test_it_shows_the_button_only_to_those_who_may_edit_settings(self):
        self.login(self.admin)
        self.assertContains(self.client.get(reverse("number_list")), self.sync_url())
        self.login(self.manager)
        response = self.client.get(reverse("number_list"))
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, self.sync_url())

    def test_it_requires_settings_edit_permission(self):
        for role in (Role.MANAGER, Role.OPERATOR, Role.AGENT):
            with self.subTest(role=role):
                self.login(self.members[role])
                self.assertEqual(self.client.post(self.sync_url()).status_code, 403)
        self.assertFalse(MessageTemplate.objects.exists())

    def test_it_answers_405_to_get(self):
        self.login(self.admin)
        self.assertEqual(self.client.get(self.sync_url()).status_code, 405)

    def test_it_answers_404_for_another_organizations_number(self):
        self.login(self.admin)
        self.assertEqual(self.client.post(self.sync_url(self.other_number)).status_code, 404)
        self.assertFalse(MessageTemplate.objects.exists())

    @override_settings(SANDBOX_URL="http://127.0.0.1:9/")
    def test_it_explains_a_failed_sync(self):
        self.login(self.admin)
        response = self.client.post(self.sync_url(), follow=True)
        self.assertContains(response, "Could not sync the templates")


class CredentialsNeverShownTests(SecretsTestCase):
    def test_the_numbers_page_masks_credentials(self):
        self.login(self.admin)
        response = self.client.get(reverse("number_list"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, self.number.verify_token)
        self.assert_no_secret(response.content.decode())

    def test_the_admin_never_shows_credentials(self):
        self.admin.is_staff = True
        self.admin.save()
        self.login(self.admin)
        pages = [
            reverse("admin:integrations_whatsappnumber_changelist"),
            reverse("admin:integrations_whatsappnumber_change", args=[self.number.pk]),
        ]
        for url in pages:
            with self.subTest(url=url):
                response = self.client.get(url)
                self.assertEqual(response.status_code, 200)
                self.assert_no_secret(response.content.decode())

    def test_credentials_never_reach_the_logs(self):
        self.chat = self.other_chat
        self.chat.window_expires_at = timezone.now() + timedelta(hours=1)
        self.chat.save()
        root = logging.getLogger()
        with self.assertLogs(root, logging.DEBUG) as logs:
            services_log_everything(self)
        text = "\n".join(logs.output)
        self.assertIn("whatsapp sent", text)  # the logs did capture the traffic
        self.assert_no_secret(text)


def services_log_everything(case):
    """Register, send (with a throttle retry and a final failure), sync templates, and
    receive a signed webhook with media: every path that handles the credentials."""
    from integrations import services

    services._registered_with_sandbox.clear()
    services.sandbox_register(case.number)
    app = case.sandbox.app
    app.inject_failure(case.number.phone_number_id, code=130429, retry_after=60)
    with case.captureOnCommitCallbacks(execute=True):
        inbox_services.message_send(
            chat=case.chat, message_type="text", content={"body": "Olá"}, author_user=case.admin
        )
    app.inject_failure(case.number.phone_number_id, code=190, http_status=401)
    with case.captureOnCommitCallbacks(execute=True):
        inbox_services.message_send(
            chat=case.chat, message_type="text", content={"body": "Olá"}, author_user=case.admin
        )
    services.templates_sync(number=case.number)
    seen = len(case.receiver.requests)
    services.sandbox_customer_send(
        number=case.number, spec={"from": "5511944443333", "type": "image"}
    )
    case.forward(case.receiver.wait_count(seen + 1)[seen])
    case.client.post(
        f"/webhooks/whatsapp/{case.number.webhook_key}/",
        data=b"{}",
        content_type="application/json",
        headers={"X-Hub-Signature-256": "sha256=00"},
    )
