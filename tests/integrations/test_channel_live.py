"""End to end over real HTTP, with real processes: a uvicorn server on the test database
receives the sandbox's signed webhooks; every send type goes out through the sandbox and
comes back read, and a customer's image arrives with its file stored."""

import hashlib
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Chat, Contact, Media, Message
from integrations import services
from integrations.models import WhatsAppNumber
from integrations.providers import provider_for
from integrations.whatsapp.sandbox import SandboxApp, SandboxServer
from integrations.whatsapp.sandbox.samples import png
from tests.base import make_org
from tests.servers import ServerProcess, free_port

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

CUSTOMER = "5511933332222"
FAST = {"sent": 0.01, "delivered": 0.02, "read": 0.03}


@pytest.fixture
def sandbox():
    with SandboxServer(SandboxApp(webhook_retry_delays=(0.1, 0.2, 0.5, 1.0))) as server:
        yield server


@pytest.fixture
def server(sandbox):
    port = free_port()
    process = ServerProcess(
        port=port,
        env={
            "SANDBOX_URL": sandbox.url,
            "SANDBOX_WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
        },
    ).start()
    yield process
    process.stop()


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_every_send_type_comes_back_read_through_the_real_webhook(sandbox, server):
    organization, number = make_org("Clínica Live", "clinica-live", "4242")
    WhatsAppNumber.objects.filter(pk=number.pk).update(waba_id="1000")
    number.refresh_from_db()
    contact = Contact.objects.create(
        organization=organization, wa_id=CUSTOMER, phone="+" + CUSTOMER
    )
    chat = Chat.objects.create(
        organization=organization,
        contact=contact,
        number=number,
        window_expires_at=timezone.now() + timedelta(hours=2),
    )
    services._registered_with_sandbox.clear()
    with override_settings(SANDBOX_URL=sandbox.url, SANDBOX_WEBHOOK_BASE_URL=server.url):
        services.sandbox_register(number)
        sandbox.app.register_number(
            {"phone_number_id": number.phone_number_id, "delays": FAST}, verify=False
        )
        # A customer writes first, with a photo: the server stores it and downloads the file.
        result = services.sandbox_customer_send(
            number=number, spec={"from": CUSTOMER, "type": "image", "caption": "Oi"}
        )
        assert result["webhook_status"] == 200
        assert wait_until(
            lambda: Media.objects.filter(message__wamid=result["wamid"]).exclude(file="").exists()
        )
        media = Media.objects.get(message__wamid=result["wamid"])
        assert media.sha256 == hashlib.sha256(png()).hexdigest()
        inbound = media.message

        services.templates_sync(number=number)
        media_id = provider_for(number).upload_media(
            data=png(), mime_type="image/png", filename="a.png"
        )
        sends = [
            ("text", {"body": "Olá, Carla!", "preview_url": False}, None),
            ("image", {"link": "https://cdn.example/a.png", "caption": "Link"}, None),
            ("image", {"id": media_id, "caption": "Upload"}, None),
            ("document", {"link": "https://cdn.example/a.pdf", "filename": "a.pdf"}, None),
            ("location", {"latitude": -23.5, "longitude": -46.6, "name": "Clínica"}, None),
            (
                "contacts",
                [{"name": {"formatted_name": "Dra. Ana"}, "phones": [{"phone": "+5511988887777"}]}],
                None,
            ),
            (
                "interactive",
                {
                    "type": "button",
                    "body": {"text": "Confirma?"},
                    "action": {
                        "buttons": [{"type": "reply", "reply": {"id": "y", "title": "Sim"}}]
                    },
                },
                None,
            ),
            (
                "interactive",
                {
                    "type": "list",
                    "body": {"text": "Horário"},
                    "action": {
                        "button": "Ver",
                        "sections": [{"title": "Manhã", "rows": [{"id": "9", "title": "9h"}]}],
                    },
                },
                None,
            ),
            (
                "template",
                {
                    "name": "appointment_reminder",
                    "language": {"code": "pt_BR"},
                    "components": [
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": v}
                                for v in ("Carla", "Dra. Ana", "12/12", "14:30")
                            ],
                        }
                    ],
                },
                None,
            ),
            ("reaction", {"message_id": inbound.wamid, "emoji": "👍"}, None),
            ("text", {"body": "Recebemos sua foto"}, inbound),
        ]
        messages = [
            inbox_services.message_send(
                chat=chat, message_type=kind, content=content, reply_to=reply_to
            )
            for kind, content, reply_to in sends
        ]
    ids = [m.pk for m in messages]

    def all_read():
        # Statuses may arrive out of order (read before delivered): wait for every one of them.
        done = Message.objects.filter(
            pk__in=ids,
            status=Message.Status.READ,
            delivered_at__isnull=False,
            sent_at__isnull=False,
        )
        return done.count() == len(ids)

    assert wait_until(all_read), list(
        Message.objects.filter(pk__in=ids).values_list("type", "status", "error_details")
    )
    for message in Message.objects.filter(pk__in=ids):
        assert message.wamid and message.sent_at and message.delivered_at and message.read_at
    reply = Message.objects.get(pk=ids[-1])
    sent = next(
        e
        for e in sandbox.app.messages(number.phone_number_id, direction="outbound")
        if e["wamid"] == reply.wamid
    )
    assert sent["message"]["context"] == {"message_id": inbound.wamid}
