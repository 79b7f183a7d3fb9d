"""Customer files: stored under random keys of their organization, served only through the
authenticated view to members who may see the chat, and never rendered as a page of our origin.

Every behaviour runs on the local disk (embedded default) and again on S3, against moto's real
S3 server on a free local port (``MediaFilesOnS3``).
"""

import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import SimpleTestCase, override_settings
from django.urls import reverse
from django.utils import timezone

from inbox.media import clean_filename
from inbox.models import Chat, Contact, Media
from integrations import services as channel
from integrations.whatsapp.sandbox import SandboxServer
from integrations.whatsapp.sandbox.samples import pdf, png
from tests.base import BaseTestCase
from tests.inbox.media_helpers import MotoS3, customer_sends, fetch

HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>'
)


class MediaFilesOnDisk(BaseTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sandbox = SandboxServer().start()
        cls.media_root = tempfile.mkdtemp(prefix="porfin-media-")
        cls.overrides = [
            override_settings(
                SANDBOX_URL=cls.sandbox.url,
                SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9",
                MEDIA_ROOT=cls.media_root,
            ),
            *cls.storage_overrides(),
        ]
        for override in cls.overrides:
            override.enable()

    @classmethod
    def storage_overrides(cls) -> list:
        return []

    @classmethod
    def tearDownClass(cls):
        for override in reversed(cls.overrides):
            override.disable()
        cls.sandbox.stop()
        shutil.rmtree(cls.media_root, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        channel._registered_with_sandbox.clear()

    def image(self, chat=None) -> Media:
        return customer_sends(self, chat or self.agent_chat, "image", png(), "image/png")

    def test_an_inbound_image_is_stored_under_a_random_key_of_its_organization(self):
        media = self.image()
        self.assertRegex(
            media.file.name, rf"^org/{self.org.code}/\d{{4}}/\d{{2}}/[0-9a-f]{{32}}\.png$"
        )
        self.assertTrue(default_storage.exists(media.file.name))
        self.assertEqual(media.url, f"/inbox/media/{media.code}/")
        page = self.client_for(self.admin).get(reverse("chat_detail", args=[self.agent_chat.code]))
        self.assertContains(page, f'src="/inbox/media/{media.code}/"')
        self.assertNotContains(page, media.file.name)

    def test_members_see_an_image_inline_with_headers_that_forbid_scripts(self):
        media = self.image()
        served = fetch(self.client_for(self.admin), media.url)
        self.assertEqual(served.status, 200)
        self.assertEqual(served.body, png())
        self.assertEqual(served.headers["Content-Type"], "image/png")
        self.assertTrue(served.headers["Content-Disposition"].startswith("inline"))
        self.assertEqual(served.first["X-Content-Type-Options"], "nosniff")
        self.assertIn("default-src 'none'", served.first["Content-Security-Policy"])
        self.assertIn("sandbox", served.first["Content-Security-Policy"])

    def test_an_agent_gets_the_files_of_their_own_chats_only(self):
        mine, theirs = self.image(self.agent_chat), self.image(self.other_chat)
        client = self.client_for(self.agent)
        self.assertEqual(fetch(client, mine.url).body, png())
        self.assertEqual(client.get(theirs.url).status_code, 404)
        self.assertEqual(fetch(self.client_for(self.operator), theirs.url).status, 200)

    def test_another_organization_gets_404_and_an_anonymous_client_the_login_page(self):
        media = self.image()
        self.assertEqual(self.client_for(self.outsider).get(media.url).status_code, 404)
        self.client.logout()
        anonymous = self.client.get(media.url)
        self.assertEqual(anonymous.status_code, 302)
        self.assertTrue(anonymous["Location"].startswith("/accounts/login/"))
        # The storage key is no URL of ours either.
        self.assertEqual(self.client.get(f"/media/{media.file.name}").status_code, 404)

    def test_an_html_document_name_is_downloaded_never_rendered(self):
        media = customer_sends(
            self, self.agent_chat, "document", HTML, "application/pdf", filename="r5-page.html"
        )
        self.assertEqual(media.filename, "r5-page.html")
        self.assertTrue(media.file.name.endswith(".pdf"), media.file.name)
        served = fetch(self.client_for(self.admin), media.url)
        self.assertEqual(served.status, 200)
        self.assertEqual(served.body, HTML)
        self.assertEqual(served.headers["Content-Type"], "application/pdf")
        disposition = served.headers["Content-Disposition"]
        self.assertTrue(disposition.startswith("attachment"), disposition)
        self.assertIn('filename="r5-page.html.pdf"', disposition)

    def test_a_name_that_climbs_folders_is_cleaned_not_refused(self):
        media = customer_sends(
            self,
            self.agent_chat,
            "document",
            pdf(),
            "application/pdf",
            filename="../../../etc/exame.pdf",
        )
        self.assertEqual(media.filename, "exame.pdf")
        self.assertTrue(media.file)
        self.assertEqual(media.message.error_title, "")
        served = fetch(self.client_for(self.admin), media.url)
        self.assertIn('filename="exame.pdf"', served.headers["Content-Disposition"])

    def test_a_file_sent_from_the_composer_gets_a_random_key_and_a_safe_type(self):
        Chat.objects.filter(pk=self.other_chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=3)
        )
        client = self.client_for(self.operator)
        upload = SimpleUploadedFile("r5-page.html", HTML, content_type="application/pdf")
        with self.captureOnCommitCallbacks(execute=True):
            response = client.post(
                reverse("send_message", args=[self.other_chat.code]),
                {"file": upload},
                HTTP_HX_REQUEST="true",
            )
        self.assertEqual(response.status_code, 201, response.content)
        media = Media.objects.get(message__chat=self.other_chat)
        self.assertRegex(media.file.name, rf"^org/{self.org.code}/.+/[0-9a-f]{{32}}\.pdf$")
        served = fetch(client, media.url)
        self.assertEqual(served.headers["Content-Type"], "application/pdf")
        self.assertTrue(served.headers["Content-Disposition"].startswith("attachment"))

    def test_a_file_stored_before_keeps_working_through_the_view_with_a_safe_type(self):
        """Rows from before random keys: an SVG under its customer's name is an octet-stream
        download, never an image/svg+xml page."""
        name = default_storage.save("media/2026/03/xray.svg", ContentFile(SVG))
        media = Media.objects.create(
            organization=self.org,
            message=self.agent_chat.messages.get(),
            mime_type="image/svg+xml",
            filename="xray.svg",
            file=name,
        )
        served = fetch(self.client_for(self.agent), media.url)
        self.assertEqual(served.status, 200)
        self.assertEqual(served.body, SVG)
        self.assertEqual(served.headers["Content-Type"], "application/octet-stream")
        self.assertTrue(served.headers["Content-Disposition"].startswith("attachment"))
        self.client.logout()
        self.assertEqual(self.client.get(f"/media/{name}").status_code, 404)

    def test_a_file_not_downloaded_yet_is_404_and_post_is_refused(self):
        media = Media.objects.create(
            organization=self.org, message=self.agent_chat.messages.get(), mime_type="image/png"
        )
        client = self.client_for(self.admin)
        self.assertEqual(client.get(media.url).status_code, 404)
        self.assertEqual(client.post(media.url).status_code, 405)

    def client_for(self, user):
        self.client.logout()
        self.login(user)
        return self.client


class MediaFilesOnS3(MediaFilesOnDisk):
    @classmethod
    def storage_overrides(cls) -> list:
        cls.s3 = MotoS3().start()
        return [cls.s3.storage_settings()]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.s3.stop()

    def test_the_file_is_in_the_bucket_and_members_get_a_short_lived_signed_url(self):
        media = self.image()
        self.assertIn(media.file.name, self.s3.keys(f"org/{self.org.code}/"))
        self.assertEqual([p for p in Path(self.media_root).rglob("*") if p.is_file()], [])
        response = self.client_for(self.agent).get(media.url)
        self.assertEqual(response.status_code, 302)
        location = urlsplit(response["Location"])
        self.assertEqual(f"{location.scheme}://{location.netloc}", self.s3.endpoint)
        query = parse_qs(location.query)
        self.assertEqual(query["X-Amz-Expires"], ["300"])
        self.assertIn("X-Amz-Signature", query)
        self.assertEqual(response["Cache-Control"], "private, no-store")
        # The object itself is private: without the signature the bucket refuses it.
        unsigned = requests.get(response["Location"].split("?")[0], timeout=10)
        self.assertEqual(unsigned.status_code, 403)

    def test_a_contact_import_uploaded_on_one_box_is_mapped_on_another(self):
        """Box A and box B have their own disks (MEDIA_ROOT) and share the bucket."""
        client = self.client_for(self.manager)
        csv = b"name,phone\nMaria,+5511988887777\n"
        box_a, box_b = tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()
        self.addCleanup(box_a.cleanup)
        self.addCleanup(box_b.cleanup)
        with override_settings(MEDIA_ROOT=box_a.name):
            upload = client.post(
                reverse("campaign_contact_import"),
                {"file": SimpleUploadedFile("contatos.csv", csv, content_type="text/csv")},
            )
        self.assertEqual(upload.status_code, 200)
        token = upload.context["token"]
        keys = self.s3.keys(f"contact-imports/{self.org.code}/")
        self.assertEqual([key for key in keys if re.search(token, key)], keys)
        self.assertEqual(len(keys), 1)
        with override_settings(MEDIA_ROOT=box_b.name), self.captureOnCommitCallbacks(execute=True):
            mapped = client.post(
                reverse("campaign_contact_import"),
                {"token": token, "col_0": "name", "col_1": "phone"},
            )
        mapped = client.get(mapped["Location"])
        self.assertContains(mapped, "Import finished")
        self.assertTrue(
            Contact.objects.filter(organization=self.org, phone="+5511988887777").exists()
        )
        self.assertEqual(self.s3.keys("contact-imports/"), [])

    def test_a_knowledge_file_is_kept_in_the_bucket(self):
        from assistants import services as assistant_services
        from assistants.models import Assistant

        assistant = Assistant.objects.create(organization=self.org, name="Sofia")
        source = assistant_services.knowledge_add(
            assistant=assistant,
            kind="file",
            title="",
            upload=SimpleUploadedFile("precos.md", b"Clareamento custa R$ 900."),
        )
        self.assertIn(source.file.name, self.s3.keys("knowledge/"))
        self.assertEqual([p for p in Path(self.media_root).rglob("*") if p.is_file()], [])


class FileNameTests(SimpleTestCase):
    def test_a_customers_file_name_is_cleaned_to_show_and_to_download(self):
        cases = {
            "../../etc/passwd": "passwd",
            "..\\..\\boot.ini": "boot.ini",
            "exame\u202efdp.exe": "examefdp.exe",  # no right-to-left override
            'a<b>c:"d|e?.pdf': "a_b_c__d_e_.pdf",
            "..": "",
            " .hidden.txt ": "hidden.txt",
            "Relatório Março.pdf": "Relatório Março.pdf",
        }
        for raw, clean in cases.items():
            with self.subTest(raw=raw):
                self.assertEqual(clean_filename(raw), clean)
        long = clean_filename("x" * 300 + ".pdf")
        self.assertEqual((len(long), long[-4:]), (200, ".pdf"))
