from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from inbox.models import Media, Message
from integrations.models import MessageTemplate, WhatsAppNumber
from tests.api.helpers import ApiTestCase, SandboxMixin

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00"
    b"IEND\xaeB`\x82"
)


class NumberAndTemplateTests(SandboxMixin, ApiTestCase):
    def test_it_lists_numbers_and_their_health(self):
        numbers = self.api("get", reverse("api_numbers")).json()["results"]
        self.assertEqual([n["id"] for n in numbers], [str(self.number.code)])
        health = self.api("get", reverse("api_number_health", args=[self.number.code])).json()
        self.assertEqual(health["number"]["id"], str(self.number.code))
        self.assertEqual((health["failed_24h"], health["pending"]), (0, 0))

    def test_it_syncs_and_lists_templates(self):
        WhatsAppNumber.objects.filter(pk=self.number.pk).update(waba_id="9001")
        response = self.api("post", reverse("api_templates_sync", args=[self.number.code]))
        self.assertEqual(response.status_code, 200, response.content)
        self.assertGreater(response.json()["synced"], 0)
        listed = self.api("get", reverse("api_templates"), {"status": "approved"}).json()["results"]
        self.assertTrue(listed)
        self.assertEqual(
            len(listed),
            MessageTemplate.objects.filter(organization=self.org, status="APPROVED").count(),
        )
        self.assertEqual(listed[0]["number"], str(self.number.code))

    def test_it_uploads_media_and_sends_it_by_id(self):
        upload = SimpleUploadedFile("map.png", PNG, content_type="image/png")
        response = self.client.post(
            reverse("api_media_upload"),
            {"file": upload},
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
        )
        self.assertEqual(response.status_code, 201, response.content)
        media = response.json()
        self.assertEqual((media["mime_type"], media["size"]), ("image/png", len(PNG)))
        self.open_window(self.other_chat)
        sent = self.api(
            "post",
            reverse("api_chat_messages", args=[self.other_chat.code]),
            {"type": "image", "image": {"id": media["id"], "caption": "Nosso endereço"}},
        )
        self.assertEqual(sent.status_code, 201, sent.content)
        self.assertEqual(sent.json()["media"][0]["id"], media["id"])
        message = Message.objects.get(code=sent.json()["id"])
        self.assertEqual(message.content["image"]["id"], media["id"])
        self.assertEqual(Media.objects.get(meta_media_id=media["id"]).message, message)

    def test_it_refuses_a_file_whatsapp_does_not_accept(self):
        upload = SimpleUploadedFile("virus.exe", b"MZ...", content_type="application/x-msdownload")
        response = self.client.post(
            reverse("api_media_upload"),
            {"file": upload},
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("file", response.json()["error"]["details"])
