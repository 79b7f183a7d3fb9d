import io
import json
import shutil
import tempfile
import zipfile
from datetime import timedelta

from django.core.files.base import ContentFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Contact, Media, Message
from reports.models import AuditEvent, RetentionPolicy
from reports.privacy import retention_purge
from tests.base import BaseTestCase

MEDIA_ROOT = tempfile.mkdtemp(prefix="porfin-reports-")


def tearDownModule():
    shutil.rmtree(MEDIA_ROOT, ignore_errors=True)


@override_settings(MEDIA_ROOT=MEDIA_ROOT)
class ContactPrivacyTests(BaseTestCase):
    def setUp(self):
        self.chat = self.other_chat
        self.contact = self.chat.contact
        self.contact.email = "cliente@example.com"
        self.contact.save()
        inbox_services.note_add(chat=self.chat, author=self.admin, body="Paciente alérgica")
        photo = Message.objects.create(
            organization=self.org,
            chat=self.chat,
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
        self.message_count = Message.objects.filter(chat__contact=self.contact).count()

    def _export(self):
        response = self.client.post(reverse("contact_export", args=[self.contact.code]))
        self.assertEqual(response["Content-Type"], "application/zip")
        return zipfile.ZipFile(io.BytesIO(response.content))

    def test_it_exports_json_and_media_in_a_zip(self):
        self.login(self.admin)
        archive = self._export()
        data = json.loads(archive.read("contact.json"))
        self.assertEqual(data["contact"]["email"], "cliente@example.com")
        texts = [m["text"] for chat in data["chats"] for m in chat["messages"]]
        self.assertIn("Paciente alérgica", texts)
        self.assertIn("minha radiografia", texts)
        media_name = next(n for n in archive.namelist() if n.startswith("media/"))
        self.assertEqual(archive.read(media_name), b"JPEG-BYTES")
        event = AuditEvent.objects.get(action=AuditEvent.Action.CONTACT_EXPORTED)
        self.assertEqual((event.actor, event.organization), (self.admin, self.org))
        self.assertNotIn("Unassigned Customer", event.target_label)

    def test_it_erases_personal_data_and_keeps_counts(self):
        self.login(self.admin)
        path = self.media.file.path
        confirm = self.client.get(reverse("contact_erase", args=[self.contact.code]))
        self.assertContains(confirm, "cannot be undone")
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("contact_erase", args=[self.contact.code]), {"confirm": "on"}
            )
        self.assertEqual(response.status_code, 302)
        contact = Contact.objects.get(pk=self.contact.pk)
        self.assertTrue(contact.name.startswith("erased-"))
        self.assertEqual((contact.email, contact.profile_name), ("", ""))
        self.assertNotIn("5511900000002", contact.phone + contact.wa_id)
        messages = Message.objects.filter(chat__contact=contact)
        self.assertEqual(messages.count(), self.message_count)
        self.assertFalse(messages.exclude(text="").exists())
        self.assertFalse(Media.objects.filter(pk=self.media.pk).exists())
        self.assertFalse(self.media.file.storage.exists(path))
        event = AuditEvent.objects.get(action=AuditEvent.Action.CONTACT_ERASED)
        self.assertEqual(event.actor, self.admin)
        page = self.client.get(reverse("contact_privacy", args=[contact.code]))
        self.assertContains(page, "Erased")
        # Nothing personal is left in the export either.
        body = self._export().read("contact.json").decode()
        for secret in ("Unassigned Customer", "5511900000002", "alérgica", "radiografia"):
            self.assertNotIn(secret, body)

    def test_it_needs_the_confirmation_box_to_erase(self):
        self.login(self.admin)
        self.client.post(reverse("contact_erase", args=[self.contact.code]))
        self.assertEqual(Contact.objects.get(pk=self.contact.pk).name, "Unassigned Customer")

    def test_it_is_for_admins_only(self):
        for user in (self.manager, self.operator, self.agent):
            self.login(user)
            for name in ("contact_privacy", "contact_export", "contact_erase"):
                url = reverse(name, args=[self.contact.code])
                self.assertEqual(self.client.get(url).status_code, 403, (user, name))

    def test_it_exports_and_erases_from_django_admin(self):
        self.admin.is_staff = True
        self.admin.save()
        self.login(self.admin)
        url = reverse("admin:inbox_contact_changelist")
        ids = {"_selected_action": [self.contact.pk]}
        response = self.client.post(url, {"action": "export_data", **ids})
        self.assertEqual(response["Content-Type"], "application/zip")
        confirm = self.client.post(url, {"action": "erase_data", **ids})
        self.assertContains(confirm, "cannot be undone")
        self.client.post(url, {"action": "erase_data", "confirm": "yes", **ids})
        self.assertTrue(Contact.objects.get(pk=self.contact.pk).name.startswith("erased-"))
        self.assertEqual(
            AuditEvent.objects.filter(
                action__in=["contact_exported", "contact_erased"], organization=self.org
            ).count(),
            2,
        )
        # An organization admin never reaches another organization's contact.
        foreign = {"_selected_action": [self.secret_chat.contact.pk]}
        self.client.post(url, {"action": "erase_data", "confirm": "yes", **foreign})
        self.assertEqual(
            Contact.objects.get(pk=self.secret_chat.contact.pk).name, "Zelda Secretcustomer"
        )


@override_settings(MEDIA_ROOT=MEDIA_ROOT)
class RetentionTests(BaseTestCase):
    def test_it_purges_messages_and_media_older_than_the_policy(self):
        old = Message.objects.create(
            organization=self.org,
            chat=self.other_chat,
            number=self.number,
            direction="in",
            text="antiga",
            author_type=Message.Author.CUSTOMER,
            timestamp=timezone.now() - timedelta(days=40),
        )
        media = Media.objects.create(organization=self.org, message=old, mime_type="image/png")
        media.file.save("old.png", ContentFile(b"PNG"))
        path = media.file.path
        policy = RetentionPolicy.objects.create(organization=self.org, message_days=30)
        foreign_old = self.secret_chat.messages.get()
        foreign_old.timestamp = timezone.now() - timedelta(days=400)
        foreign_old.save()
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(retention_purge(policy), 1)
        self.assertFalse(Message.objects.filter(pk=old.pk).exists())
        self.assertTrue(self.other_chat.messages.exists())  # recent ones stay
        self.assertTrue(Message.objects.filter(pk=foreign_old.pk).exists())
        self.assertFalse(media.file.storage.exists(path))
        self.assertTrue(
            AuditEvent.objects.filter(action="retention_purged", organization=self.org).exists()
        )

    def test_it_lets_admins_set_retention_and_managers_only_see_it(self):
        self.login(self.admin)
        self.client.post(reverse("privacy_settings"), {"message_days": "90"})
        self.assertEqual(RetentionPolicy.objects.get(organization=self.org).message_days, 90)
        self.assertTrue(AuditEvent.objects.filter(action="retention_changed").exists())
        self.login(self.manager)
        self.assertContains(self.client.get(reverse("privacy_settings")), "90 days")
        response = self.client.post(reverse("privacy_settings"), {"message_days": "7"})
        self.assertEqual(response.status_code, 403)
        self.login(self.operator)
        self.assertEqual(self.client.get(reverse("privacy_settings")).status_code, 403)
