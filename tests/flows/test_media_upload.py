"""Media by upload in message steps: the editor uploads a file (type and size checked), the
step sends it through the number's provider (the sandbox) by id, and the chat shows it."""

import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from flows import services
from inbox.models import Media
from tests.flows.helpers import FlowTestCase
from tests.flows.test_actions import chain


def png() -> bytes:
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


class MediaUploadTests(FlowTestCase):
    def test_upload_in_the_editor_then_the_step_sends_the_file(self):
        flow = services.flow_create(organization=self.org, name="Tabela", draft=chain(
            {"id": "price", "type": "message", "props": {"text": "Nossa tabela"}}
        ))  # fmt: skip
        self.login(self.admin)
        url = reverse("flow_media_upload", args=[flow.code])
        refused = self.client.post(
            url,
            {"file": SimpleUploadedFile("x.exe", b"MZ", content_type="application/x-msdownload")},
        )
        self.assertEqual(refused.status_code, 422)
        self.assertIn("cannot send", refused.json()["error"])
        self.assertEqual(self.client.get(reverse("flow_edit", args=[flow.code])).status_code, 200)

        answer = self.client.post(
            url, {"file": SimpleUploadedFile("tabela.png", png(), content_type="image/png")}
        ).json()
        self.assertEqual((answer["kind"], answer["filename"]), ("image", "tabela.png"))
        stored = Media.objects.get(code=answer["media"])
        self.assertEqual((stored.organization, stored.message), (self.org, None))

        draft = flow.draft
        draft["nodes"][1]["props"].update(
            media_type="image", media_file=answer["media"], media_name="tabela.png"
        )
        services.draft_save(flow=flow, draft=draft, revision=flow.revision)
        flow.refresh_from_db()
        with self.captureOnCommitCallbacks(execute=True):
            services.flow_publish(flow=flow, user=self.admin)

        chat = self.receive("go").chat
        (sent,) = self.sent(chat)
        self.assertEqual(sent.type, "image")
        self.assertTrue(sent.content["image"]["id"])
        self.assertEqual(sent.content["image"]["caption"], "Nossa tabela")
        sent.refresh_from_db()
        self.assertNotEqual(sent.status, "failed")
        copy = sent.media.get()
        self.assertEqual((copy.filename, copy.size), ("tabela.png", stored.size))

    def test_other_organizations_and_viewers_cannot_upload(self):
        flow = services.flow_create(organization=self.org, name="X", draft=chain(
            {"id": "m", "type": "message", "props": {"text": "oi"}}
        ))  # fmt: skip
        upload = {"file": SimpleUploadedFile("a.png", png(), content_type="image/png")}
        self.login(self.operator)
        self.assertEqual(
            self.client.post(reverse("flow_media_upload", args=[flow.code]), upload).status_code,
            403,
        )
        self.login(self.outsider)
        upload["file"].seek(0)
        self.assertEqual(
            self.client.post(reverse("flow_media_upload", args=[flow.code]), upload).status_code,
            404,
        )
        self.assertFalse(Media.objects.filter(organization=self.org).exists())
