"""Settings › Numbers: an owner connects a Cloud API number checked live against the Graph API
(the sandbox plays Meta here), or a sandbox number; sees its health; edits, rotates,
deactivates and deletes it. Secrets are stored encrypted and never shown again."""

from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from inbox.models import Message
from integrations import services
from integrations.models import WhatsAppNumber
from integrations.whatsapp.sandbox import SandboxApp, SandboxServer
from tests.base import BaseTestCase

META_PNID = "106540352242922"
META_WABA = "102290129340398"
META_TOKEN = "EAAG-live-checked-token-5d4c3b2a1"
META_SECRET = "meta-app-secret-0f9e8d7c6b"


class NumberPagesTestCase(BaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sandbox = SandboxServer(
            SandboxApp(webhook_timeout=1.0, webhook_retry_delays=(), delivery_workers=2)
        ).start()
        cls._settings = override_settings(
            WHATSAPP_GRAPH_BASE_URL=cls.sandbox.url,
            SANDBOX_URL=cls.sandbox.url,
            SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9",
            SANDBOX_ENABLED=True,
        )
        cls._settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._settings.disable()
        cls.sandbox.stop()
        super().tearDownClass()

    def setUp(self):
        self.sandbox.app.reset()
        services._registered_with_sandbox.clear()
        # The number as it exists at Meta: these credentials answer the Graph API.
        self.sandbox.app.register_number(
            {
                "phone_number_id": META_PNID,
                "display_phone_number": "5511933334444",
                "waba_id": META_WABA,
                "access_token": META_TOKEN,
                "app_secret": META_SECRET,
                "quality_rating": "YELLOW",
                "messaging_limit_tier": "TIER_10K",
            },
            verify=False,
        )

    def login(self, user):
        self.client.force_login(user)

    def cloud_form(self, **changes):
        data = {
            "provider": "cloud_api",
            "name": "Recepção",
            "phone_number_id": META_PNID,
            "waba_id": META_WABA,
            "access_token": META_TOKEN,
            "app_secret": META_SECRET,
        }
        data.update(changes)
        return data


class AddNumberTests(NumberPagesTestCase):
    def test_a_valid_cloud_number_is_saved_encrypted_and_its_webhook_shown(self):
        self.login(self.admin)
        response = self.client.post(reverse("number_add"), self.cloud_form(), follow=True)
        number = WhatsAppNumber.objects.get(phone_number_id=META_PNID)
        self.assertRedirects(response, reverse("number_detail", kwargs={"code": number.code}))
        self.assertEqual(number.organization, self.org)
        self.assertEqual(number.provider, "cloud_api")
        self.assertEqual(number.access_token, META_TOKEN)
        self.assertEqual(number.quality_rating, "YELLOW")
        self.assertEqual(number.messaging_limit, "TIER_10K")
        self.assertEqual(number.display_phone_number, "+55 11 93333-4444")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT access_token, app_secret FROM integrations_whatsappnumber WHERE id = %s",
                [number.pk],
            )
            stored_token, stored_secret = cursor.fetchone()
        self.assertNotIn(META_TOKEN, stored_token)
        self.assertNotIn(META_SECRET, stored_secret)
        self.assertContains(response, f"/webhooks/whatsapp/{number.webhook_key}/")
        self.assertContains(response, number.verify_token)
        self.assertContains(response, "data-copy=")
        self.assertContains(response, "Test webhook")
        self.assertNotContains(response, META_TOKEN)
        self.assertNotContains(response, META_SECRET)

    def test_a_bad_token_is_a_form_error_and_nothing_is_saved(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("number_add"), self.cloud_form(access_token="EAAG-wrong-token-123")
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("access_token", response.context["form"].errors)
        self.assertContains(response, "WhatsApp refused this access token", status_code=400)
        self.assertNotContains(response, "EAAG-wrong-token-123", status_code=400)
        self.assertFalse(WhatsAppNumber.objects.filter(phone_number_id=META_PNID).exists())

    def test_an_id_the_token_cannot_reach_is_a_form_error_on_that_field(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("number_add"), self.cloud_form(phone_number_id="106540352200000")
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("phone_number_id", response.context["form"].errors)

    def test_a_waba_the_token_cannot_reach_is_a_form_error_on_that_field(self):
        self.login(self.admin)
        response = self.client.post(reverse("number_add"), self.cloud_form(waba_id="55555555"))
        self.assertEqual(response.status_code, 400)
        self.assertIn("waba_id", response.context["form"].errors)

    def test_an_unreachable_graph_api_says_so(self):
        self.login(self.admin)
        with override_settings(WHATSAPP_GRAPH_BASE_URL="http://127.0.0.1:9"):
            response = self.client.post(reverse("number_add"), self.cloud_form())
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "Could not reach WhatsApp", status_code=400)

    def test_cloud_fields_are_required_and_ids_are_digits(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("number_add"),
            {"provider": "cloud_api", "name": "X", "phone_number_id": "abc"},
        )
        errors = response.context["form"].errors
        self.assertEqual(response.status_code, 400)
        self.assertIn("digits", str(errors["phone_number_id"]))
        for name in ("waba_id", "access_token", "app_secret"):
            self.assertIn(name, errors)

    def test_a_number_connected_elsewhere_is_refused(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("number_add"),
            self.cloud_form(phone_number_id=self.other_number.phone_number_id),
        )
        self.assertContains(response, "already connected", status_code=400)
        self.assertNotContains(response, self.other_org.name, status_code=400)

    def test_a_sandbox_number_needs_only_a_name_and_is_registered_with_the_sandbox(self):
        self.login(self.admin)
        response = self.client.post(reverse("number_add"), {"provider": "sandbox", "name": "Teste"})
        number = WhatsAppNumber.objects.get(organization=self.org, name="Teste")
        self.assertRedirects(response, reverse("number_detail", kwargs={"code": number.code}))
        self.assertEqual(number.provider, "sandbox")
        self.assertEqual(self.sandbox.app.number(number.phone_number_id)["waba_id"], number.waba_id)
        self.assertEqual(number.quality_rating, "GREEN")


class AccessTests(NumberPagesTestCase):
    def test_only_those_who_edit_settings_may_add_or_change_numbers(self):
        self.login(self.manager)  # settings: view only
        self.assertEqual(self.client.get(reverse("number_add")).status_code, 403)
        self.assertEqual(
            self.client.post(reverse("number_add"), self.cloud_form()).status_code, 403
        )
        code = self.number.code
        for name in ("number_edit", "number_delete", "number_toggle", "number_webhook_test"):
            self.assertEqual(
                self.client.post(reverse(name, kwargs={"code": code})).status_code, 403, name
            )
        detail = self.client.get(reverse("number_detail", kwargs={"code": code}))
        self.assertEqual(detail.status_code, 200)  # read-only
        self.assertNotContains(detail, "Edit or rotate credentials")
        self.assertFalse(WhatsAppNumber.objects.filter(phone_number_id=META_PNID).exists())
        self.assertTrue(WhatsAppNumber.objects.get(pk=self.number.pk).is_active)

    def test_operators_and_agents_do_not_see_numbers(self):
        for user in (self.operator, self.agent):
            self.login(user)
            self.assertEqual(self.client.get(reverse("number_list")).status_code, 403)
            detail = reverse("number_detail", kwargs={"code": self.number.code})
            self.assertEqual(self.client.get(detail).status_code, 403)

    def test_another_organizations_number_is_not_found(self):
        self.login(self.admin)
        code = self.other_number.code
        self.assertEqual(
            self.client.get(reverse("number_detail", kwargs={"code": code})).status_code, 404
        )
        for name in ("number_edit", "number_delete", "number_toggle", "number_refresh"):
            self.assertEqual(
                self.client.post(reverse(name, kwargs={"code": code}), {"name": "x"}).status_code,
                404,
                name,
            )
        self.other_number.refresh_from_db()
        self.assertTrue(self.other_number.is_active)
        self.assertNotEqual(self.other_number.name, "x")


class EditAndDeleteTests(NumberPagesTestCase):
    def connect(self):
        self.login(self.admin)
        self.client.post(reverse("number_add"), self.cloud_form())
        return WhatsAppNumber.objects.get(phone_number_id=META_PNID)

    def test_rotating_the_token_checks_it_and_secrets_are_never_echoed(self):
        number = self.connect()
        url = reverse("number_edit", kwargs={"code": number.code})
        page = self.client.get(url)
        self.assertNotContains(page, META_TOKEN)
        self.assertNotContains(page, META_SECRET)
        self.assertContains(page, "••••" + META_TOKEN[-4:])

        refused = self.client.post(url, {"name": "Recepção 2", "access_token": "EAAG-nope-999"})
        self.assertEqual(refused.status_code, 400)
        self.assertIn("access_token", refused.context["form"].errors)
        number.refresh_from_db()
        self.assertEqual((number.name, number.access_token), ("Recepção", META_TOKEN))

        new_token = "EAAG-rotated-token-77aa66bb"
        self.sandbox.app.register_number({"phone_number_id": META_PNID, "access_token": new_token})
        saved = self.client.post(
            url, {"name": "Recepção 2", "access_token": new_token, "app_secret": "new-secret-42x"}
        )
        self.assertRedirects(saved, reverse("number_detail", kwargs={"code": number.code}))
        number.refresh_from_db()
        self.assertEqual(number.name, "Recepção 2")
        self.assertEqual(number.access_token, new_token)
        self.assertEqual(number.app_secret, "new-secret-42x")

        self.client.post(url, {"name": "Recepção 3"})  # blank keeps the secrets
        number.refresh_from_db()
        self.assertEqual((number.access_token, number.app_secret), (new_token, "new-secret-42x"))

    def test_a_number_with_chats_is_never_deleted_only_deactivated(self):
        self.login(self.admin)
        url = reverse("number_delete", kwargs={"code": self.number.code})
        confirm = self.client.get(url)
        self.assertContains(confirm, "cannot be deleted")
        response = self.client.post(url)
        self.assertEqual(response.status_code, 409)
        self.assertTrue(WhatsAppNumber.objects.filter(pk=self.number.pk).exists())
        self.client.post(reverse("number_toggle", kwargs={"code": self.number.code}))
        self.number.refresh_from_db()
        self.assertFalse(self.number.is_active)
        self.assertEqual(self.number.chats.count(), 2)

    def test_a_number_without_chats_is_deleted_after_confirmation(self):
        number = self.connect()
        url = reverse("number_delete", kwargs={"code": number.code})
        self.assertContains(self.client.get(url), "Delete for good")
        self.assertTrue(WhatsAppNumber.objects.filter(pk=number.pk).exists())
        self.assertRedirects(self.client.post(url), reverse("number_list"))
        self.assertFalse(WhatsAppNumber.objects.filter(pk=number.pk).exists())


class HealthTests(NumberPagesTestCase):
    def test_the_list_shows_last_inbound_and_the_last_failed_send_with_its_reason(self):
        chat = self.other_chat
        Message.objects.create(
            organization=self.org,
            chat=chat,
            number=self.number,
            direction="out",
            text="Lembrete",
            status=Message.Status.FAILED,
            failed_at=timezone.now(),
            error_code=131026,
            error_title="Message undeliverable",
            author_type=Message.Author.USER,
        )
        self.number.quality_rating = "GREEN"
        self.number.messaging_limit = "TIER_1K"
        self.number.save()
        self.login(self.admin)
        page = self.client.get(reverse("number_list"))
        self.assertContains(page, "#131026 Message undeliverable")
        self.assertContains(page, "Last customer message")
        self.assertNotContains(page, "none yet")
        self.assertContains(page, "TIER_1K")
        self.assertContains(page, "GREEN")
        self.assertNotContains(page, self.other_number.name)
