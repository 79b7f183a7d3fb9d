import io
import json
import shutil
import tempfile
import zipfile
from datetime import timedelta

from django.core.files.base import ContentFile
from django.test import override_settings
from django.urls import reverse

from inbox.models import Contact, Media, Message
from reports import stats
from reports.models import AuditEvent
from tests.api.helpers import ApiTestCase, key_for

MEDIA_ROOT = tempfile.mkdtemp(prefix="porfin-api-reports-")


def tearDownModule():
    shutil.rmtree(MEDIA_ROOT, ignore_errors=True)


class ReportSummaryTests(ApiTestCase):
    def setUp(self):
        super().setUp()
        today = stats.local_today(self.org)
        start, _end = stats.day_bounds(self.org, today)
        asked = start + timedelta(minutes=1)  # early today, whenever the test runs
        # Two customer messages (the fixtures' chats), each answered 30 s and 90 s later.
        for chat, delay in ((self.agent_chat, 30), (self.other_chat, 90)):
            Message.objects.filter(chat=chat).update(timestamp=asked)
            Message.objects.create(
                organization=self.org,
                chat=chat,
                number=self.number,
                direction="out",
                text="Olá!",
                author_type=Message.Author.USER,
                author_user=self.agent,
                timestamp=asked + timedelta(seconds=delay),
            )
        stats.stats_rebuild(self.org, first=today - timedelta(days=7), last=today)
        stats.stats_rebuild(self.other_org, first=today - timedelta(days=7), last=today)
        self.today = today

    def summary(self, secret=None, **params):
        return self.api("get", reverse("api_reports_summary"), params, secret=secret)

    def test_it_gives_the_dashboard_figures_for_a_period(self):
        response = self.summary(period="today")
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(
            body["period"], {"start": str(self.today), "end": str(self.today), "days": 1}
        )
        yesterday = str(self.today - timedelta(days=1))
        self.assertEqual(body["previous_period"], {"start": yesterday, "end": yesterday, "days": 1})
        current = body["current"]
        self.assertEqual(
            (current["conversations"], current["messages_in"], current["messages_out"]), (2, 2, 2)
        )
        self.assertEqual(current["first_response_median_seconds"], 60.0)
        self.assertEqual(current["first_response_p90_seconds"], 84.0)
        self.assertIsNone(current["campaign_reply_rate"])
        self.assertEqual(body["previous"]["messages_in"], 0)
        self.assertEqual(
            body["days"],
            [{"day": str(self.today), "conversations": 2, "messages_in": 2, "messages_out": 2}],
        )
        self.assertEqual(body["time_zone"], self.org.time_zone)

    def test_the_default_is_the_last_30_days(self):
        body = self.summary().json()
        self.assertEqual(body["period"]["days"], 30)
        self.assertEqual(body["period"]["end"], str(self.today))
        self.assertEqual(len(body["days"]), 30)
        self.assertEqual(body["current"]["messages_in"], 2)  # never Bob's clinic's message

    def test_a_custom_period_is_checked(self):
        start, end = self.today - timedelta(days=2), self.today
        body = self.summary(period="custom", start=str(start), end=str(end)).json()
        self.assertEqual(body["period"]["days"], 3)
        for params in (
            {"period": "custom"},
            {"period": "custom", "start": str(end), "end": str(start)},
            {"period": "custom", "start": "2020-01-01", "end": "2022-01-01"},
            {"period": "14"},
        ):
            response = self.summary(**params)
            with self.subTest(params=params):
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json()["error"]["code"], "invalid")

    def test_it_needs_the_reports_scope(self):
        secret = key_for(self.org, scopes=["chats:write"], name="Chats")
        response = self.summary(secret=secret)
        self.assertEqual(response.status_code, 403)
        self.assertIn("reports:read", response.json()["error"]["message"])
        self.login(self.agent)  # agents see the dashboard
        self.assertEqual(self.client.get(reverse("api_reports_summary")).status_code, 200)


@override_settings(MEDIA_ROOT=MEDIA_ROOT)
class ContactPrivacyApiTests(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.contact = self.other_chat.contact
        Contact.objects.filter(pk=self.contact.pk).update(email="cliente@example.com")
        photo = Message.objects.create(
            organization=self.org,
            chat=self.other_chat,
            number=self.number,
            direction="in",
            type="image",
            text="minha radiografia",
            author_type=Message.Author.CUSTOMER,
        )
        self.media = Media.objects.create(
            organization=self.org, message=photo, mime_type="image/jpeg", filename="raio-x.jpg"
        )
        self.media.file.save("raio-x.jpg", ContentFile(b"JPEG-BYTES"))

    def export(self, contact=None, secret=None):
        url = reverse("api_contact_export", args=[(contact or self.contact).code])
        return self.api("get", url, secret=secret, REMOTE_ADDR="203.0.113.7")

    def erase(self, data, contact=None, secret=None):
        url = reverse("api_contact_erase", args=[(contact or self.contact).code])
        return self.api("post", url, data, secret=secret, REMOTE_ADDR="203.0.113.7")

    def test_it_exports_the_same_zip_as_the_contact_page_and_logs_it(self):
        response = self.export()
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "application/zip")
        self.assertIn(f"contact-{self.contact.code}.zip", response["Content-Disposition"])
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        data = json.loads(archive.read("contact.json"))
        self.assertEqual(data["contact"]["email"], "cliente@example.com")
        texts = [m["text"] for chat in data["chats"] for m in chat["messages"]]
        self.assertIn("minha radiografia", texts)
        media = next(n for n in archive.namelist() if n.startswith("media/"))
        self.assertEqual(archive.read(media), b"JPEG-BYTES")
        event = AuditEvent.objects.get(action=AuditEvent.Action.CONTACT_EXPORTED)
        self.assertEqual((event.organization, event.ip), (self.org, "203.0.113.7"))
        self.assertEqual(event.target_id, str(self.contact.code))
        self.assertEqual(event.actor_label, f"API key “Integration” ({self.secret[:12]}…)")

    def test_errors_stay_json_when_the_client_accepts_only_zip(self):
        zipped = self.api(
            "get",
            reverse("api_contact_export", args=[self.contact.code]),
            HTTP_ACCEPT="application/zip",
        )
        self.assertEqual((zipped.status_code, zipped["Content-Type"]), (200, "application/zip"))
        missing = self.api(
            "get",
            reverse("api_contact_export", args=["00000000-0000-0000-0000-000000000000"]),
            HTTP_ACCEPT="application/zip",
        )
        self.assertEqual(missing.status_code, 404)
        self.assertEqual(missing.json()["error"]["code"], "not_found")

    def test_it_erases_personal_data_once_and_logs_it(self):
        response = self.erase({"confirm": False})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(Contact.objects.get(pk=self.contact.pk).email, "cliente@example.com")
        response = self.erase({"confirm": True})
        self.assertEqual(response.status_code, 200, response.content)
        token = response.json()["token"]
        contact = Contact.objects.get(pk=self.contact.pk)
        self.assertEqual((contact.name, contact.email), (token, ""))
        self.assertFalse(
            Message.objects.filter(chat__contact=contact, text="minha radiografia").exists()
        )
        self.assertTrue(Message.objects.filter(chat__contact=contact).exists())  # counts stay
        self.assertFalse(Media.objects.filter(pk=self.media.pk).exists())
        self.assertEqual(self.erase({"confirm": True}).json()["token"], token)
        (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.CONTACT_ERASED)
        self.assertEqual((event.organization, event.ip), (self.org, "203.0.113.7"))
        self.assertNotIn("Unassigned Customer", event.target_label)

    def test_export_needs_privacy_read_and_erasure_privacy_write(self):
        reader = key_for(self.org, scopes=["privacy:read"], name="Exports")
        contacts = key_for(self.org, scopes=["contacts:write"], name="Contacts")
        self.assertEqual(self.export(secret=contacts).status_code, 403)
        self.assertEqual(self.export(secret=reader).status_code, 200)
        response = self.erase({"confirm": True}, secret=reader)
        self.assertEqual(response.status_code, 403)
        self.assertIn("privacy:write", response.json()["error"]["message"])
        self.assertEqual(Contact.objects.get(pk=self.contact.pk).email, "cliente@example.com")

    def test_only_admins_may_use_it_from_a_session_as_on_the_contact_page(self):
        url = reverse("api_contact_export", args=[self.contact.code])
        self.login(self.manager)  # sees Settings but may not change them
        self.assertEqual(self.client.get(url).status_code, 403)
        self.login(self.admin)
        self.assertEqual(self.client.get(url).status_code, 200)
        event = AuditEvent.objects.get(action=AuditEvent.Action.CONTACT_EXPORTED)
        self.assertEqual(event.actor, self.admin)

    def test_another_organizations_contact_is_404_and_untouched(self):
        foreign = self.secret_chat.contact
        self.assertEqual(self.export(contact=foreign).status_code, 404)
        self.assertEqual(self.erase({"confirm": True}, contact=foreign).status_code, 404)
        self.assertEqual(Contact.objects.get(pk=foreign.pk).name, "Zelda Secretcustomer")
        self.assertFalse(AuditEvent.objects.filter(target_id=str(foreign.code)).exists())
