"""The webhook as Meta meets it: a real uvicorn process (on PostgreSQL, the group-commit
receiver in ``integrations.ingest``; on SQLite, the Django view), concurrent signed deliveries,
and every refusal answered with its status and nothing stored."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from accounts.models import Organization
from inbox.models import Message
from integrations.models import WebhookEvent, WhatsAppNumber
from integrations.whatsapp import payloads, signature
from tests.servers import ServerProcess

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

SECRET = "server-test-secret"
LIMIT = 8192


@pytest.fixture
def server():
    process = ServerProcess(env={"WEBHOOK_MAX_BODY_BYTES": str(LIMIT)}).start()
    yield process
    process.stop()


def make_number(slug: str, pnid: str, secret: str = SECRET) -> WhatsAppNumber:
    org = Organization.objects.create(name=slug.title(), slug=slug)
    return WhatsAppNumber.objects.create(
        organization=org,
        name="Main",
        display_phone_number="+55 11 4000-0000",
        phone_number_id=pnid,
        waba_id="77",
        provider=WhatsAppNumber.Provider.CLOUD_API,
        access_token="token",
        app_secret=secret,
    )


def inbound(number: WhatsAppNumber, index: int) -> bytes:
    wa_id = f"55119{index:08d}"
    message = payloads.build_inbound_message(
        wamid=f"wamid.server-{index}",
        from_wa_id=wa_id,
        message_type="text",
        content=payloads.build_text(f"Olá {index}"),
        timestamp=str(int(time.time())),
    )
    change = payloads.build_messages_change(
        phone_number_id=number.phone_number_id,
        display_phone_number="551140000000",
        contacts=[payloads.build_contact(wa_id=wa_id, profile_name=f"Cliente {index}")],
        messages=[message],
    )
    return payloads.encode_webhook(payloads.build_webhook(number.waba_id, [change]))


def post(server, number, body: bytes, headers=None):
    url = f"{server.url}/webhooks/whatsapp/{number.webhook_key}/"
    default = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signature.sign(body, SECRET),
    }
    return requests.post(url, data=body, headers={**default, **(headers or {})}, timeout=10)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_concurrent_signed_deliveries_are_each_stored_once_and_processed(server):
    number = make_number("alpha", "5001")
    bodies = [inbound(number, i) for i in range(40)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda body: post(server, number, body), bodies))
    assert [a.status_code for a in answers] == [200] * 40
    received = [a.json()["received"] for a in answers]
    assert len(set(received)) == 40
    stored = {e.pk: bytes(e.body) for e in WebhookEvent.objects.filter(pk__in=received)}
    # Each answer names the row holding exactly the bytes that request sent.
    assert [stored[pk] for pk in received] == bodies
    assert all(
        e.organization_id == number.organization_id and e.headers.get("x-hub-signature-256")
        for e in WebhookEvent.objects.filter(pk__in=received)
    )
    assert wait_for(
        lambda: (
            Message.objects.filter(number=number, wamid__startswith="wamid.server-").count() == 40
        )
    )
    assert wait_for(
        lambda: not WebhookEvent.objects.filter(pk__in=received, processed_at=None).exists()
    )


def test_refusals_store_nothing_and_say_why(server):
    number = make_number("beta", "5002")
    body = inbound(number, 1)
    unsigned = post(server, number, body, {"X-Hub-Signature-256": ""})
    assert (unsigned.status_code, unsigned.text) == (401, "Missing X-Hub-Signature-256")
    forged = post(server, number, body, {"X-Hub-Signature-256": signature.sign(body, "other")})
    assert (forged.status_code, forged.text) == (403, "Invalid signature")
    huge = json.dumps({"object": "whatsapp_business_account", "pad": "x" * LIMIT}).encode()
    assert post(server, number, huge).status_code == 413
    url = f"{server.url}/webhooks/whatsapp/not-a-number-key/"
    assert requests.post(url, data=body, timeout=10).status_code == 404
    assert not WebhookEvent.objects.exists()


def test_a_rotated_secret_takes_effect_at_once(server):
    number = make_number("eta", "5007")
    assert post(server, number, inbound(number, 1)).status_code == 200  # the server keeps it
    WhatsAppNumber.objects.filter(pk=number.pk).update(app_secret="rotated-secret")
    body = inbound(number, 2)
    rotated = post(
        server, number, body, {"X-Hub-Signature-256": signature.sign(body, "rotated-secret")}
    )
    assert rotated.status_code == 200
    assert bytes(WebhookEvent.objects.get(pk=rotated.json()["received"]).body) == body
    stale = post(server, number, inbound(number, 3))
    assert (stale.status_code, stale.text) == (403, "Invalid signature")


def test_signed_but_malformed_json_is_kept_with_the_reason_and_acknowledged(server):
    number = make_number("gamma", "5003")
    answer = post(server, number, b'{"object": "whatsapp_business_account", ')
    assert answer.status_code == 200
    event = WebhookEvent.objects.get(pk=answer.json()["received"])
    assert event.error.startswith("Malformed JSON")
    assert event.processed_at is not None


def test_malformed_deliveries_posted_among_good_ones_keep_their_own_rows(server):
    """Deliveries arriving together share one INSERT: each answer still names its own row, and
    only the malformed ones are kept as done with their reason."""
    number = make_number("theta", "5008")
    bodies = [
        inbound(number, i) if i % 3 else b'{"object": "whatsapp_business_account", ' + b"x" * i
        for i in range(30)
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda body: post(server, number, body), bodies))
    assert [a.status_code for a in answers] == [200] * 30
    rows = WebhookEvent.objects.in_bulk([a.json()["received"] for a in answers])
    for index, (body, answer) in enumerate(zip(bodies, answers, strict=True)):
        event = rows[answer.json()["received"]]
        assert bytes(event.body) == body
        if index % 3:
            assert event.error == ""
        else:
            assert event.error.startswith("Malformed JSON") and event.processed_at is not None


def test_hostile_deliveries_are_answered_and_never_a_server_error(server):
    number = make_number("theta", "5008")
    body = inbound(number, 1)
    accented = post(server, number, body, {"X-Hub-Signature-256": "sha256=ééé".encode()})
    assert (accented.status_code, accented.text) == (403, "Invalid signature")
    deep = b'{"object":"whatsapp_business_account","entry":' + b"[" * 3000 + b"]" * 3000 + b"}"
    answer = post(server, number, deep)
    assert answer.status_code == 200
    event = WebhookEvent.objects.get(pk=answer.json()["received"])
    assert (event.error, bytes(event.body)) == ("Malformed JSON: nested too deeply", deep)
    assert event.processed_at is not None


def test_a_delivery_signed_for_one_number_cannot_be_posted_to_another(server):
    alpha = make_number("delta", "5004")
    other = make_number("epsilon", "5005", secret="epsilon-secret")
    body = inbound(alpha, 7)
    url = f"{server.url}/webhooks/whatsapp/{other.webhook_key}/"
    answer = requests.post(
        url, data=body, headers={"X-Hub-Signature-256": signature.sign(body, SECRET)}, timeout=10
    )
    assert answer.status_code == 403
    assert not WebhookEvent.objects.exists()


def test_verification_still_answers_through_the_same_route(server):
    number = make_number("zeta", "5006")
    url = f"{server.url}/webhooks/whatsapp/{number.webhook_key}/"
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": number.verify_token,
        "hub.challenge": "42",
    }
    assert requests.get(url, params=params, timeout=10).text == "42"
    params["hub.verify_token"] = "wrong"
    assert requests.get(url, params=params, timeout=10).status_code == 403
