import base64
import hashlib
import json
import time

import pytest
import requests

from integrations.whatsapp.errors import ThrottledError, WindowClosedError
from integrations.whatsapp.payloads import (
    InboundMessage,
    StatusUpdate,
    TemplateStatusUpdate,
    parse_webhook_bytes,
)
from integrations.whatsapp.sandbox import SandboxApp, SandboxServer, mount
from integrations.whatsapp.sandbox.http import split_mount
from integrations.whatsapp.signature import verify
from tests.integrations.conftest import (
    ACCESS_TOKEN,
    API_VERSION,
    APP_SECRET,
    CUSTOMER,
    DISPLAY_NUMBER,
    PNID,
    WABA_ID,
    control,
    graph,
    make_client,
)


def signed_events(received):
    """Parse webhook requests after checking each one's signature."""
    events = []
    for request in received:
        assert request.headers["content-type"] == "application/json"
        assert request.body.isascii()
        assert verify(request.body, request.headers["x-hub-signature-256"], APP_SECRET)
        events.extend(parse_webhook_bytes(request.body))
    return events


def statuses_of(receiver, wamid, count):
    received = receiver.wait_for(
        lambda items: sum(wamid.encode() in r.body for r in items) >= count
    )
    return [e for e in signed_events(received) if isinstance(e, StatusUpdate) and e.wamid == wamid]


def wait_until(read, done, timeout=5.0):
    """Poll ``read()`` until ``done(value)``; the sandbox logs a delivery after its answer."""
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        assert time.monotonic() < deadline, f"timed out with {value!r}"
        time.sleep(0.01)
    return value


def text_payload(to=CUSTOMER, body="Olá"):
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def error_of(response):
    return response.json()["error"]


# --- Status webhooks ----------------------------------------------------------------------------


def test_status_webhooks_arrive_signed_and_in_order(client, receiver):
    wamid = client.send_text(CUSTOMER, "Olá")

    statuses = statuses_of(receiver, wamid, 3)

    assert [s.status for s in statuses] == ["sent", "delivered", "read"]
    assert {s.recipient_id for s in statuses} == {CUSTOMER}
    assert {s.phone_number_id for s in statuses} == {PNID}
    assert statuses[0].waba_id == WABA_ID
    assert statuses[0].pricing["pricing_model"] == "PMP"
    assert statuses[0].timestamp.tzinfo is not None


def test_the_send_response_never_waits_for_webhooks(client, receiver):
    receiver.delay = 0.5
    started = time.monotonic()

    client.send_text(CUSTOMER, "Olá")
    client.send_text(CUSTOMER, "De novo")

    assert time.monotonic() - started < 0.3


def test_read_is_optional_and_callback_data_is_echoed(client, register, receiver):
    register(delays={"read": None})
    wamid = client.send_text(CUSTOMER, "Olá", callback_data="campaign:42")

    statuses = statuses_of(receiver, wamid, 2)
    time.sleep(0.1)

    assert [s.status for s in statuses] == ["sent", "delivered"]
    assert sum(wamid.encode() in r.body for r in receiver.requests) == 2
    assert {s.biz_opaque_callback_data for s in statuses} == {"campaign:42"}


def test_statuses_can_be_duplicated_and_shuffled(client, register, receiver):
    register(duplicate_statuses=True, shuffle_statuses=True)
    wamid = client.send_text(CUSTOMER, "Olá")

    statuses = statuses_of(receiver, wamid, 6)

    assert sorted(s.status for s in statuses) == ["delivered"] * 2 + ["read"] * 2 + ["sent"] * 2


def test_webhook_deliveries_are_retried_after_a_non_200_answer(client, sandbox, register, receiver):
    register(delays={"delivered": None, "read": None})
    receiver.status_codes = [500, 204]
    wamid = client.send_text(CUSTOMER, "Olá")

    statuses = statuses_of(receiver, wamid, 3)

    assert [s.status for s in statuses] == ["sent", "sent", "sent"]
    sent_attempts = wait_until(
        lambda: [d for d in sandbox.app.deliveries(PNID) if d["kind"] == "status:sent"],
        lambda attempts: len(attempts) == 3,
    )
    assert [(d["attempt"], d["status_code"]) for d in sent_attempts] == [
        (1, 500),
        (2, 204),
        (3, 200),
    ]
    assert len({r.body for r in receiver.requests}) == 1  # the same signed bytes every time


# --- Customers ----------------------------------------------------------------------------------


INBOUND = [
    (
        {"type": "text", "text": "Oi, quero marcar uma consulta"},
        "text",
        "Oi, quero marcar uma consulta",
    ),
    ({"type": "image", "caption": "Meu exame"}, "image", "Meu exame"),
    ({"type": "video", "caption": "Vídeo"}, "video", "Vídeo"),
    ({"type": "audio", "voice": True}, "audio", ""),
    (
        {"type": "document", "filename": "exame.pdf", "caption": "Resultado"},
        "document",
        "Resultado",
    ),
    ({"type": "sticker", "animated": False}, "sticker", ""),
    (
        {"type": "location", "latitude": -23.56, "longitude": -46.65, "name": "Casa"},
        "location",
        "Casa",
    ),
    (
        {"type": "contacts", "contacts": [{"name": "Ana Souza", "phone": "+55 11 97777-6666"}]},
        "contacts",
        "Ana Souza",
    ),
    (
        {
            "type": "button_reply",
            "reply_id": "confirm",
            "title": "Confirmar",
            "context_id": "wamid.Q",
        },
        "interactive",
        "Confirmar",
    ),
    (
        {"type": "list_reply", "id": "t14", "title": "14:00", "description": "Dra. Ana"},
        "interactive",
        "14:00",
    ),
    ({"type": "nfm_reply", "response": {"date": "2026-05-12"}}, "interactive", "Sent"),
    (
        {"type": "button", "payload": "stop", "text": "Parar promoções", "context_id": "wamid.T"},
        "button",
        "Parar promoções",
    ),
    ({"type": "reaction", "message_id": "wamid.Q", "emoji": "❤️"}, "reaction", "❤️"),
    (
        {
            "type": "order",
            "product_items": [
                {
                    "product_retailer_id": "LIMPEZA",
                    "quantity": 1,
                    "item_price": 150,
                    "currency": "BRL",
                }
            ],
        },
        "order",
        "",
    ),
    (
        {"type": "system", "system_type": "user_changed_number", "new_wa_id": "5511977776666"},
        "system",
        None,
    ),
    (
        {"type": "system", "system_type": "customer_identity_changed"},
        "system",
        "User identity changed",
    ),
    (
        {"type": "edit", "original_message_id": "wamid.OLD", "text": "Corrigindo"},
        "edit",
        "Corrigindo",
    ),
    ({"type": "revoke", "original_message_id": "wamid.OLD"}, "revoke", ""),
    ({"type": "unsupported"}, "unsupported", ""),
]


@pytest.mark.parametrize(
    ("spec", "message_type", "text"),
    INBOUND,
    ids=[f"{i}-{s['type']}" for i, (s, _, _) in enumerate(INBOUND)],
)
def test_customer_messages_arrive_signed_and_parse(
    sandbox, number, receiver, spec, message_type, text
):
    result = control(
        sandbox,
        "POST",
        f"numbers/{PNID}/inbound",
        json={"from": CUSTOMER, "profile_name": "Maria Silva", **spec},
    ).json()

    assert result["webhook_status"] == 200
    (event,) = signed_events(receiver.wait_count(1))
    assert isinstance(event, InboundMessage)
    assert event.wamid == result["wamid"]
    assert event.type == message_type
    assert event.wa_id == CUSTOMER
    assert event.display_phone_number == DISPLAY_NUMBER
    if text is not None:
        assert event.text == text
    if message_type != "system":
        assert event.profile_name == "Maria Silva"
    if spec.get("context_id"):
        assert event.context == {"from": DISPLAY_NUMBER, "id": spec["context_id"]}
    if message_type == "unsupported":
        assert event.errors[0].code == 131051


def test_customer_media_can_be_fetched_through_the_media_endpoints(client, sandbox, receiver):
    data = b"%PDF-1.4 resultado do exame"
    result = sandbox.app.send_inbound(
        PNID,
        {
            "from": CUSTOMER,
            "type": "document",
            "data_base64": base64.b64encode(data).decode(),
            "mime_type": "application/pdf",
            "filename": "resultado.pdf",
        },
    )

    (event,) = signed_events(receiver.wait_count(1))
    info, downloaded = client.fetch_media(event.media_id)

    assert event.media_id == result["media_ids"][0]
    assert event.filename == "resultado.pdf" and event.mime_type == "application/pdf"
    assert base64.b64decode(event.sha256) == hashlib.sha256(data).digest()  # base64 in webhooks
    assert info.sha256 == hashlib.sha256(data).hexdigest()  # hex from GET /{media-id}
    assert downloaded == data


def test_edits_of_media_keep_the_media_and_change_the_caption(sandbox, number, receiver):
    photo = sandbox.app.send_inbound(PNID, {"from": CUSTOMER, "type": "image", "caption": "a"})
    sandbox.app.send_inbound(
        PNID,
        {"from": CUSTOMER, "type": "edit", "original_message_id": photo["wamid"], "caption": "b"},
    )

    first, edit = signed_events(receiver.wait_count(2))

    assert edit.original_wamid == first.wamid
    assert edit.media_id == first.media_id and edit.caption == "b"


def test_several_customer_messages_can_share_one_webhook(sandbox, number, receiver):
    result = sandbox.app.send_inbound(
        PNID,
        {
            "messages": [
                {"from": CUSTOMER, "profile_name": "Maria", "text": "Oi"},
                {"from": "5521977776666", "profile_name": "João", "text": "Olá"},
                {"from": CUSTOMER, "profile_name": "Maria", "text": "Tudo bem?"},
            ]
        },
    )

    (request,) = receiver.wait_count(1)
    events = signed_events([request])

    assert len(result["wamids"]) == 3
    assert [(e.profile_name, e.text) for e in events] == [
        ("Maria", "Oi"),
        ("João", "Olá"),
        ("Maria", "Tudo bem?"),
    ]
    assert len(request.json()["entry"][0]["changes"][0]["value"]["contacts"]) == 2


def test_inbound_can_return_before_the_webhook_goes_out(sandbox, number, receiver):
    receiver.delay = 0.3
    started = time.monotonic()

    result = control(
        sandbox,
        "POST",
        f"numbers/{PNID}/inbound",
        params={"wait": "0"},
        json={"from": CUSTOMER, "text": "Oi"},
    ).json()

    assert time.monotonic() - started < 0.25
    assert result["webhook_status"] is None
    (event,) = signed_events(receiver.wait_count(1))
    assert event.wamid == result["wamid"]


def test_inbound_reports_an_unreachable_webhook(sandbox, register):
    register(webhook_url="http://127.0.0.1:9/webhook")

    result = sandbox.app.send_inbound(PNID, {"from": CUSTOMER, "text": "Oi"})

    assert result["webhook_status"] is None
    assert sandbox.app.deliveries(PNID)[0]["error"]


def test_inbound_rejects_bad_specs(sandbox, number):
    for spec, message in [
        ({"text": "no sender"}, "from must be"),
        ({"from": CUSTOMER, "type": "selfie"}, "type must be one of"),
        ({"from": CUSTOMER, "type": "text"}, "text or body is required"),
        ({"from": CUSTOMER, "type": "location", "latitude": "north"}, "latitude"),
        ({"from": CUSTOMER, "type": "image", "data_base64": "***"}, "not valid base64"),
        ({"from": CUSTOMER, "type": "reaction", "message_id": "wamid.X"}, "emoji"),
    ]:
        response = control(sandbox, "POST", f"numbers/{PNID}/inbound", json=spec)
        assert response.status_code == 400
        assert message in response.json()["error"]
    assert control(sandbox, "POST", "numbers/999/inbound", json={}).status_code == 404


# --- Limits -------------------------------------------------------------------------------------


def test_the_throughput_cap_answers_130429(sandbox, register):
    register(throughput_cap=3, pair_rate_burst=100)

    answers = [
        graph(sandbox, "POST", f"{PNID}/messages", json=text_payload(f"55119888800{i:02d}"))
        for i in range(5)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 400, 400]
    assert error_of(answers[3])["code"] == 130429
    assert error_of(answers[3])["message"] == "(#130429) Rate limit hit"
    time.sleep(1.05)
    assert graph(sandbox, "POST", f"{PNID}/messages", json=text_payload()).status_code == 200


def test_the_pair_rate_limit_answers_131056_for_that_recipient_only(sandbox, register):
    register(pair_rate_burst=2, pair_rate_interval=60)
    client = make_client(sandbox, max_retries=0)

    client.send_text(CUSTOMER, "1")
    client.send_text(CUSTOMER, "2")
    with pytest.raises(ThrottledError) as excinfo:
        client.send_text(CUSTOMER, "3")
    other = client.send_text("5521977776666", "another customer")

    assert excinfo.value.code == 131056
    assert other.startswith("wamid.")


def test_the_pair_bucket_refills_over_time(sandbox, register):
    register(pair_rate_burst=1, pair_rate_interval=0.1)

    codes = [
        graph(sandbox, "POST", f"{PNID}/messages", json=text_payload()).status_code
        for _ in range(2)
    ]
    time.sleep(0.12)

    assert codes == [200, 400]
    assert graph(sandbox, "POST", f"{PNID}/messages", json=text_payload()).status_code == 200


# --- The 24-hour window -------------------------------------------------------------------------


def test_outside_the_window_a_send_fails_by_status_webhook(client, register, receiver):
    register(enforce_window=True)

    wamid = client.send_text(CUSTOMER, "Olá")
    (failed,) = statuses_of(receiver, wamid, 1)

    assert failed.status == "failed"
    assert failed.error.code == 131047
    assert isinstance(failed.error.to_exception(), WindowClosedError)


def test_templates_go_out_of_the_window_and_customer_messages_open_it(
    client, sandbox, register, receiver
):
    register(enforce_window=True)
    template = client.send_template(CUSTOMER, "welcome", "pt_BR")
    sandbox.app.send_inbound(PNID, {"from": CUSTOMER, "text": "Oi"})
    reply = client.send_text(CUSTOMER, "Como podemos ajudar?")

    assert [s.status for s in statuses_of(receiver, template, 3)] == ["sent", "delivered", "read"]
    reply_statuses = statuses_of(receiver, reply, 3)
    assert [s.status for s in reply_statuses] == ["sent", "delivered", "read"]
    assert reply_statuses[0].pricing["type"] == "free_customer_service"


def test_the_window_error_can_be_synchronous(client, register):
    register(enforce_window=True, window_error_mode="sync")

    with pytest.raises(WindowClosedError) as excinfo:
        client.send_text(CUSTOMER, "Olá")

    assert excinfo.value.http_status == 400


def test_injected_failures_can_arrive_as_failed_statuses(client, sandbox, receiver):
    sandbox.app.inject_failure(PNID, code=131026, mode="status", to=CUSTOMER)

    other = client.send_text("5521977776666", "ok")
    wamid = client.send_text(CUSTOMER, "Olá")

    (failed,) = statuses_of(receiver, wamid, 1)
    assert failed.error.code == 131026
    assert failed.pricing is None
    assert statuses_of(receiver, other, 3)[0].status == "sent"


def test_a_bsuid_in_to_is_accepted_and_silently_dropped(sandbox, number, receiver):
    response = graph(
        sandbox, "POST", f"{PNID}/messages", json=text_payload(to="US.13491208655302741918")
    )
    time.sleep(0.15)

    assert response.status_code == 200
    assert response.json()["messages"][0]["id"].startswith("wamid.")
    assert receiver.requests == []


# --- Graph API fidelity -------------------------------------------------------------------------


def test_the_success_shape_matches_meta(sandbox, number):
    text = graph(sandbox, "POST", f"{PNID}/messages", json=text_payload(to="+55 11 98888-7777"))
    template = graph(
        sandbox,
        "POST",
        f"{PNID}/messages",
        json={
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
            "type": "template",
            "template": {"name": "welcome", "language": {"code": "pt_BR"}},
        },
    )

    body = text.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+55 11 98888-7777", "wa_id": CUSTOMER}]
    assert set(body["messages"][0]) == {"id"}
    assert template.json()["messages"][0]["message_status"] == "accepted"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"messaging_product": "whatsapp", "to": CUSTOMER, "text": {"body": "x" * 4097}}, 400, 100),
        ({"to": CUSTOMER, "text": {"body": "x"}}, 400, 100),
        ({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image"}, 400, 131008),
        (
            {
                "messaging_product": "whatsapp",
                "to": CUSTOMER,
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": "?"},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": f"{i}", "title": f"{i}"}}
                            for i in range(4)
                        ]
                    },
                },
            },
            400,
            131009,
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": CUSTOMER,
                "type": "template",
                "template": {"name": "nope", "language": {"code": "pt_BR"}},
            },
            400,
            132001,
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": CUSTOMER,
                "type": "template",
                "template": {
                    "name": "appointment_reminder",
                    "language": {"code": "pt_BR"},
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}
                    ],
                },
            },
            400,
            132000,
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": CUSTOMER,
                "type": "template",
                "template": {
                    "name": "promo_header_image",
                    "language": {"code": "pt_BR"},
                    "components": [
                        {"type": "header", "parameters": [{"type": "text", "text": "x"}]},
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": "a"},
                                {"type": "text", "text": "b"},
                            ],
                        },
                    ],
                },
            },
            400,
            132012,
        ),
    ],
)
def test_invalid_sends_get_meta_shaped_errors(sandbox, number, payload, status, code):
    response = graph(sandbox, "POST", f"{PNID}/messages", json=payload)

    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ")
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    assert error["fbtrace_id"]


def test_it_accepts_chatwoots_json_string_action(sandbox, number):
    action = {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}
    response = graph(
        sandbox,
        "POST",
        f"{PNID}/messages",
        json={
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
            "type": "interactive",
            "interactive": {"type": "button", "body": {"text": "?"}, "action": json.dumps(action)},
        },
    )

    assert response.status_code == 200


def test_tokens_are_checked_per_number(sandbox, register):
    register()
    register(phone_number_id="200000000000001", access_token="EAAG-other-number")

    missing = requests.post(
        f"{sandbox.url}/{API_VERSION}/{PNID}/messages", json=text_payload(), timeout=5
    )
    invalid = graph(
        sandbox,
        "POST",
        f"{PNID}/messages",
        json=text_payload(),
        headers={"Authorization": "Bearer nope"},
    )
    foreign = graph(sandbox, "POST", "200000000000001/messages", json=text_payload())

    assert (missing.status_code, error_of(missing)["code"]) == (401, 190)
    assert (invalid.status_code, error_of(invalid)["code"]) == (401, 190)
    assert foreign.status_code == 400
    assert (error_of(foreign)["code"], error_of(foreign)["error_subcode"]) == (100, 33)


def test_unknown_versions_and_paths_are_graph_errors(sandbox, number):
    future = requests.get(
        f"{sandbox.url}/v99.0/{PNID}",
        timeout=5,
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    older = graph(sandbox, "GET", PNID)
    older_version = requests.get(
        f"{sandbox.url}/v23.0/{PNID}",
        timeout=5,
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    unknown = graph(sandbox, "GET", "123/nothing")

    assert error_of(future)["code"] == 2500
    assert older.status_code == older_version.status_code == 200
    assert error_of(unknown)["code"] == 100


def test_phone_number_fields_can_be_selected(sandbox, number):
    selected = graph(sandbox, "GET", PNID, params={"fields": "quality_rating,throughput"})
    unknown = graph(sandbox, "GET", PNID, params={"fields": "secret_field"})

    assert selected.json() == {
        "id": PNID,
        "quality_rating": "GREEN",
        "throughput": {"level": "STANDARD"},
    }
    assert "nonexisting field (secret_field)" in error_of(unknown)["message"]


def test_media_urls_need_the_bearer_token_and_expire(sandbox, number):
    client = make_client(sandbox)
    media_id = client.upload_media(b"%PDF-1.4 x", "application/pdf", "x.pdf")
    url = client.get_media(media_id).url

    anonymous = requests.get(url, timeout=5)
    tampered = requests.get(
        url.replace("hash=", "hash=0"),
        timeout=5,
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    sandbox.app.media_url_ttl = -1
    expired = requests.get(
        client.get_media(media_id).url,
        timeout=5,
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )

    assert url.startswith(f"{sandbox.url}/whatsapp_business/attachments/?mid={media_id}")
    assert anonymous.status_code == 401
    assert tampered.status_code == 404
    assert expired.status_code == 404


def test_uploads_are_checked_like_meta(sandbox, number):
    gif = graph(
        sandbox,
        "POST",
        f"{PNID}/media",
        data={"messaging_product": "whatsapp"},
        files={"file": ("a.gif", b"GIF89a", "image/gif")},
    )
    no_product = graph(
        sandbox, "POST", f"{PNID}/media", files={"file": ("a.png", b"png", "image/png")}
    )

    assert error_of(gif)["code"] == 100 and "image/gif" in error_of(gif)["error_data"]["details"]
    assert error_of(no_product)["code"] == 100


def test_template_creation_is_reviewed_and_announced_by_webhook(client, register, receiver):
    register(template_review_delay=0.02, template_review_outcome="REJECTED")
    created = client.create_template(
        "promo_clareamento",
        "pt_BR",
        "MARKETING",
        [
            {
                "type": "BODY",
                "text": "Olá {{1}}, clareamento com desconto!",
                "example": {"body_text": [["Maria"]]},
            }
        ],
    )

    received = receiver.wait_for(lambda items: len(items) >= 1)
    (event,) = signed_events(received)

    assert isinstance(event, TemplateStatusUpdate)
    assert (event.template_id, event.template_name, event.event) == (
        created["id"],
        "promo_clareamento",
        "REJECTED",
    )
    assert event.timestamp is not None


def test_duplicate_templates_and_pending_ones_are_refused(client, sandbox, register):
    register(template_review_outcome="PENDING")
    client.create_template("aviso", "pt_BR", "UTILITY", [{"type": "BODY", "text": "Aviso"}])
    duplicate = graph(
        sandbox,
        "POST",
        f"{WABA_ID}/message_templates",
        json={
            "name": "aviso",
            "language": "pt_BR",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Aviso"}],
        },
    )
    pending_send = graph(
        sandbox,
        "POST",
        f"{PNID}/messages",
        json={
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
            "type": "template",
            "template": {"name": "aviso", "language": {"code": "pt_BR"}},
        },
    )

    assert error_of(duplicate)["error_subcode"] == 2388024
    assert error_of(pending_send)["code"] == 132001


def test_paused_templates_cannot_be_sent(client, sandbox):
    template_id = next(t["id"] for t in client.list_templates() if t["name"] == "welcome")
    control(sandbox, "POST", f"templates/{template_id}/status", json={"status": "PAUSED"})

    response = graph(
        sandbox,
        "POST",
        f"{PNID}/messages",
        json={
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
            "type": "template",
            "template": {"name": "welcome", "language": {"code": "pt_BR"}},
        },
    )

    assert error_of(response)["code"] == 132015


# --- Control API --------------------------------------------------------------------------------


def test_numbers_are_registered_through_the_control_api_with_the_get_challenge(sandbox, receiver):
    config = {
        "phone_number_id": PNID,
        "display_phone_number": DISPLAY_NUMBER,
        "waba_id": WABA_ID,
        "access_token": ACCESS_TOKEN,
        "app_secret": APP_SECRET,
        "webhook_url": receiver.url,
        "verify_token": receiver.verify_token,
    }

    ok = control(sandbox, "POST", "numbers", json=config).json()
    wrong = control(sandbox, "POST", "numbers", json={**config, "verify_token": "wrong"}).json()
    listed = control(sandbox, "GET", "numbers").json()["numbers"]

    assert ok["webhook_verification"]["ok"] is True
    assert wrong["webhook_verification"] == {
        "ok": False,
        "status_code": 403,
        "detail": "the response did not echo hub.challenge with 200",
    }
    assert [n["phone_number_id"] for n in listed] == [PNID]
    assert ACCESS_TOKEN not in json.dumps(listed) and APP_SECRET not in json.dumps(listed)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"phone_number_id": PNID}, "Missing number settings"),
        ({"phone_number_id": PNID, "colour": "blue"}, "Unknown number settings: colour"),
        (
            {
                "phone_number_id": "abc",
                "display_phone_number": "1",
                "waba_id": "1",
                "access_token": "t",
                "app_secret": "s",
            },
            "digits only",
        ),
        (
            {
                "phone_number_id": PNID,
                "display_phone_number": "1",
                "waba_id": "1",
                "access_token": "t",
                "app_secret": "s",
                "delays": {"sent": -1},
            },
            "delays.sent",
        ),
    ],
)
def test_bad_number_settings_are_refused(sandbox, config, message):
    response = control(sandbox, "POST", "numbers", json=config)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_the_control_api_lists_messages_failures_and_resets(client, sandbox, receiver):
    sandbox.app.send_inbound(PNID, {"from": CUSTOMER, "text": "Oi"})
    client.send_text(CUSTOMER, "Olá!")
    injected = control(
        sandbox, "POST", f"numbers/{PNID}/failures", json={"code": 131026, "count": 2}
    ).json()["failure"]

    messages = control(
        sandbox, "GET", f"numbers/{PNID}/messages", params={"wa_id": CUSTOMER}
    ).json()["messages"]
    failures = control(sandbox, "GET", f"numbers/{PNID}/failures").json()["failures"]
    bad_failure = control(sandbox, "POST", f"numbers/{PNID}/failures", json={"count": 1})

    assert [m["direction"] for m in messages] == ["inbound", "outbound"]
    assert messages[1]["message"]["text"]["body"] == "Olá!"
    assert injected["http_status"] == 400 and failures[0]["count"] == 2
    assert bad_failure.status_code == 400
    assert control(sandbox, "DELETE", f"numbers/{PNID}/failures").json() == {"ok": True}
    assert control(sandbox, "POST", "reset", json={"keep_numbers": True}).json() == {"ok": True}
    assert control(sandbox, "GET", f"numbers/{PNID}/messages").json()["messages"] == []
    assert control(sandbox, "GET", "nothing").status_code == 404


def test_the_control_api_can_require_a_token():
    app = SandboxApp(control_token="s3cret")
    with SandboxServer(app) as server:
        refused = requests.get(f"{server.url}/_sandbox/", timeout=5)
        allowed = requests.get(
            f"{server.url}/_sandbox/", timeout=5, headers={"X-Sandbox-Token": "s3cret"}
        )

    assert refused.status_code == 401
    assert allowed.json()["api_version"] == "v25.0"


# --- Mounting inside another ASGI app -----------------------------------------------------------


def test_mounted_under_a_prefix_it_serves_the_product_and_calls_its_webhook(tmp_path):
    """The embedded setup: sandbox and webhook receiver in one server, one event loop."""
    received = []

    async def product(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = SandboxApp(webhook_retry_delays=())
    with SandboxServer(mount("/sandbox", app, product)) as server:
        app.register_number(
            {
                "phone_number_id": PNID,
                "display_phone_number": DISPLAY_NUMBER,
                "waba_id": WABA_ID,
                "access_token": ACCESS_TOKEN,
                "app_secret": APP_SECRET,
                "webhook_url": f"{server.url}/whatsapp/webhook",
                "enforce_window": False,
                "delays": {"sent": None, "delivered": None, "read": None},
            }
        )
        client = make_client(type("S", (), {"url": f"{server.url}/sandbox"}))
        inbound = requests.post(
            f"{server.url}/sandbox/_sandbox/numbers/{PNID}/inbound",
            json={"from": CUSTOMER, "type": "image"},
            timeout=5,
        ).json()
        info = client.get_media(inbound["media_ids"][0])
        downloaded = client.download_media(info.url)
        wamid = client.send_text(CUSTOMER, "Olá")

    assert inbound["webhook_status"] == 200
    assert received[0][0] == "/whatsapp/webhook"
    assert parse_webhook_bytes(received[0][1])[0].media_id == inbound["media_ids"][0]
    assert info.url.startswith(f"{server.url}/sandbox/whatsapp_business/attachments/")
    assert downloaded.startswith(b"\x89PNG")
    assert wamid.startswith("wamid.")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"path": "/v25.0/1/messages", "root_path": ""}, ("", "/v25.0/1/messages")),
        ({"path": "/sandbox/v25.0/1", "root_path": "/sandbox"}, ("/sandbox", "/v25.0/1")),
        ({"path": "/v25.0/1", "root_path": "/sandbox"}, ("/sandbox", "/v25.0/1")),
        (
            {"path": "/dev/sandbox/_sandbox/", "root_path": "/dev", "path_remaining": "_sandbox/"},
            ("/dev/sandbox", "/_sandbox/"),
        ),
    ],
)
def test_it_finds_its_mount_point_from_root_path_or_channels_routing(scope, expected):
    assert split_mount(scope) == expected
