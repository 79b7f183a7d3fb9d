"""Production settings (DEBUG=0, MEDIA_STORAGE=s3) in a real server process: a customer's image
arrives through the server's webhook, its download task stores it in an S3-compatible bucket (moto's
real server on a local port), and the server hands it to its organization's agent only."""

import time

import pytest
import requests
from django.test import Client, override_settings

from accounts.models import Membership, Organization, Role, User
from inbox.models import Chat, Media
from integrations import services as channel
from integrations.models import WhatsAppNumber
from integrations.whatsapp.sandbox.samples import png
from tests.inbox.media_helpers import BUCKET, MotoS3
from tests.servers import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

# The server and this test share the database, so they share the keys: sessions made here are
# read there, credentials encrypted here are decrypted there.
PRODUCTION = {
    "SECRET_KEY": "media-production-test-secret-key-with-enough-entropy-0123456789",
    "FIELD_ENCRYPTION_KEY": "bWVkaWEtcHJvZHVjdGlvbi10ZXN0LWZlcm5ldC1rZXk=",
    "EMAIL_URL": "consolemail://",
}


def organization(name: str, slug: str, pnid: str) -> tuple[Organization, WhatsAppNumber]:
    org = Organization.objects.create(name=name, slug=slug, language="en")
    number = WhatsAppNumber.objects.create(
        organization=org,
        name=f"{name} desk",
        display_phone_number="+55 11 4000-0000",
        phone_number_id=pnid,
        waba_id=f"9{pnid}",
        access_token=f"token-{slug}",
        app_secret=f"secret-{slug}",
        provider=WhatsAppNumber.Provider.SANDBOX,
    )
    return org, number


def member(org: Organization, email: str, role: str) -> User:
    user = User.objects.create_user(email=email, password="a-long-passphrase-42")
    Membership.objects.create(user=user, organization=org, role=role)
    return user


def session_cookie(user: User) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


def wait_for(query, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = query.first()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"nothing matched {query.query} within {timeout}s")


def test_production_settings_serve_an_inbound_image_from_s3_to_its_agent_only():
    s3 = MotoS3().start()
    server = None
    try:
        with override_settings(**PRODUCTION):
            clinic, number = organization("Clínica Sorriso", "sorriso", "7001")
            agent = member(clinic, "agent@sorriso.test", Role.AGENT)
            other, _other_number = organization("Clínica Bob", "bob", "7002")
            stranger = member(other, "admin@bob.test", Role.ADMIN)
            server = ServerProcess(
                env={"DEBUG": "0", "SECURE_SSL_REDIRECT": "0", **PRODUCTION, **s3.env()}
            ).start()
            with override_settings(
                SANDBOX_URL=server.sandbox_url, SANDBOX_WEBHOOK_BASE_URL=server.url
            ):
                channel._registered_with_sandbox.clear()
                channel.sandbox_customer_send(
                    number=number,
                    spec={"from": "5511977776666", "profile_name": "Rita", "type": "image"},
                )
            media = wait_for(Media.objects.filter(organization=clinic).exclude(file=""))
            Chat.objects.filter(organization=clinic).update(assignee=agent)

            assert media.file.name in s3.keys(f"org/{clinic.code}/")
            url = server.url + media.url
            answer = requests.get(
                url, cookies=session_cookie(agent), allow_redirects=False, timeout=10
            )
            assert answer.status_code == 302, answer.text[:500]
            assert answer.headers["Location"].startswith(f"{s3.endpoint}/{BUCKET}/org/")
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            image = requests.get(answer.headers["Location"], timeout=10)
            assert image.status_code == 200
            assert image.content == png()
            assert image.headers["Content-Type"] == "image/png"

            foreign = requests.get(
                url, cookies=session_cookie(stranger), allow_redirects=False, timeout=10
            )
            assert foreign.status_code == 404
            anonymous = requests.get(url, allow_redirects=False, timeout=10)
            assert anonymous.status_code == 302
            assert "/accounts/login/" in anonymous.headers["Location"]
    finally:
        if server is not None:
            server.stop()
        s3.stop()
