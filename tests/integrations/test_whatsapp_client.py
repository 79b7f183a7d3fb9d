import hashlib
import logging
import socket
import threading
import time

import pytest
import requests

from integrations.whatsapp import client as client_module
from integrations.whatsapp.client import CloudAPIClient, shared_session
from integrations.whatsapp.errors import (
    AccountError,
    AuthError,
    InvalidRequestError,
    MediaError,
    PairThrottledError,
    RecipientError,
    ServerError,
    SpamThrottledError,
    TemplateError,
    ThrottledError,
    ValidationError,
    WhatsAppError,
    WindowClosedError,
    error_from_response,
)
from integrations.whatsapp.sandbox.samples import pdf, png
from tests.integrations.conftest import (
    ACCESS_TOKEN,
    API_VERSION,
    CUSTOMER,
    PNID,
    make_client,
)


def sent(sandbox):
    return sandbox.app.messages(PNID, direction="outbound")


def last_message(sandbox):
    return sent(sandbox)[-1]["message"]


class CountingSession(requests.Session):
    """A session that counts the HTTP calls made through it."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def request(self, *args, **kwargs):
        self.calls += 1
        return super().request(*args, **kwargs)


# --- Sending each type --------------------------------------------------------------------------


def test_it_sends_text_and_normalizes_the_phone_number(client, sandbox):
    wamid = client.send_text(
        "+55 (11) 98888-7777", "Olá! Sua consulta está confirmada.", preview_url=True
    )

    assert wamid.startswith("wamid.")
    record = sent(sandbox)[0]
    assert record["wamid"] == wamid
    assert record["message"]["to"] == CUSTOMER
    assert record["message"]["recipient_type"] == "individual"
    assert record["message"]["text"] == {
        "preview_url": True,
        "body": "Olá! Sua consulta está confirmada.",
    }


def test_it_sends_a_reply_with_context_and_callback_data(client, sandbox):
    client.send_text(CUSTOMER, "Respondendo", reply_to="wamid.ORIGINAL", callback_data="conv:9")

    message = last_message(sandbox)
    assert message["context"] == {"message_id": "wamid.ORIGINAL"}
    assert message["biz_opaque_callback_data"] == "conv:9"


def test_it_sends_to_a_bsuid_through_recipient(client, sandbox):
    client.send_text("US.13491208655302741918", "hi")

    message = last_message(sandbox)
    assert message["recipient"] == "US.13491208655302741918"
    assert "to" not in message


@pytest.mark.parametrize(
    ("kind", "data", "mime", "filename", "extra"),
    [
        ("image", png(), "image/png", "foto.png", {"caption": "Raio-x"}),
        (
            "video",
            b"\x00\x00\x00\x18ftypmp42" + bytes(64),
            "video/mp4",
            "v.mp4",
            {"caption": "Vídeo"},
        ),
        ("audio", b"OggS" + bytes(64), "audio/ogg", "a.ogg", {"voice": True}),
        (
            "document",
            pdf("Receita"),
            "application/pdf",
            "receita.pdf",
            {"caption": "Sua receita", "filename": "receita.pdf"},
        ),
        ("sticker", b"RIFF\x1a\x00\x00\x00WEBPVP8L" + bytes(16), "image/webp", "s.webp", {}),
    ],
)
def test_it_uploads_and_sends_each_media_kind(client, sandbox, kind, data, mime, filename, extra):
    media_id = client.upload_media(data, mime, filename)
    wamid = client.send_media(CUSTOMER, kind, media_id=media_id, **extra)

    assert wamid.startswith("wamid.")
    assert last_message(sandbox)[kind] == {"id": media_id, **extra}
    info = client.get_media(media_id)
    assert (info.mime_type, info.file_size) == (mime, len(data))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert client.download_media(info.url) == data


def test_it_sends_media_by_link(client, sandbox):
    client.send_media(
        CUSTOMER, "document", link="https://example.com/laudo.pdf", filename="laudo.pdf"
    )

    assert last_message(sandbox)["document"] == {
        "link": "https://example.com/laudo.pdf",
        "filename": "laudo.pdf",
    }


def test_it_deletes_media(client):
    media_id = client.upload_media(png(), "image/png", "x.png")

    assert client.delete_media(media_id) is True
    with pytest.raises(InvalidRequestError) as excinfo:
        client.get_media(media_id)
    assert excinfo.value.code == 100


def test_it_refuses_oversized_downloads(client):
    media_id = client.upload_media(pdf("x" * 50), "application/pdf", "big.pdf")

    with pytest.raises(MediaError, match="too large"):
        client.fetch_media(media_id, max_bytes=100)


def test_it_sends_location_and_contacts(client, sandbox):
    client.send_location(
        CUSTOMER,
        latitude=-23.5617,
        longitude=-46.6559,
        name="Clínica Sorriso",
        address="Av. Paulista, 1000",
    )
    location = last_message(sandbox)["location"]
    client.send_contacts(
        CUSTOMER,
        [
            {
                "name": {"formatted_name": "Dra. Ana Souza", "first_name": "Ana"},
                "phones": [{"phone": "+55 11 4000-0000", "type": "WORK"}],
            }
        ],
    )

    assert location["name"] == "Clínica Sorriso"
    assert last_message(sandbox)["contacts"][0]["name"]["formatted_name"] == "Dra. Ana Souza"


BUTTONS = {
    "type": "button",
    "header": {"type": "text", "text": "Sua consulta"},
    "body": {"text": "Confirma a consulta de amanhã às 14h?"},
    "footer": {"text": "Clínica Sorriso"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "confirm", "title": "Confirmar"}},
            {"type": "reply", "reply": {"id": "reschedule", "title": "Remarcar"}},
            {"type": "reply", "reply": {"id": "cancel", "title": "Cancelar"}},
        ]
    },
}
LIST = {
    "type": "list",
    "header": {"type": "text", "text": "Horários"},
    "body": {"text": "Escolha um horário"},
    "action": {
        "button": "Ver horários",
        "sections": [
            {
                "title": "Manhã",
                "rows": [
                    {"id": "m8", "title": "08:00", "description": "Dra. Ana"},
                    {"id": "m9", "title": "09:00"},
                ],
            },
            {"title": "Tarde", "rows": [{"id": "t14", "title": "14:00"}]},
        ],
    },
}
CTA = {
    "type": "cta_url",
    "body": {"text": "Veja o preparo para o exame"},
    "action": {
        "name": "cta_url",
        "parameters": {"display_text": "Abrir guia", "url": "https://example.com/preparo"},
    },
}


@pytest.mark.parametrize("interactive", [BUTTONS, LIST, CTA], ids=["buttons", "list", "cta"])
def test_it_sends_interactive_messages(client, sandbox, interactive):
    client.send_interactive(CUSTOMER, interactive, reply_to="wamid.Q")

    message = last_message(sandbox)
    assert message["interactive"] == interactive
    assert message["context"] == {"message_id": "wamid.Q"}


def test_it_sends_templates_with_positional_named_and_media_parameters(client, sandbox):
    client.send_template(CUSTOMER, "welcome", "pt_BR")
    client.send_template(
        CUSTOMER,
        "appointment_reminder",
        "pt_BR",
        [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": v} for v in ("Maria", "Dra. Ana", "12/05", "14:30")
                ],
            }
        ],
    )
    client.send_template(
        CUSTOMER,
        "appointment_confirmed",
        "pt_BR",
        [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "parameter_name": "patient_name", "text": "Maria"},
                    {"type": "text", "parameter_name": "procedure", "text": "limpeza"},
                    {"type": "text", "parameter_name": "date", "text": "12/05"},
                ],
            }
        ],
    )
    client.send_template(
        CUSTOMER,
        "promo_header_image",
        "pt_BR",
        [
            {
                "type": "HEADER",
                "parameters": [{"type": "image", "image": {"link": "https://example.com/p.jpg"}}],
            },
            {
                "type": "BODY",
                "parameters": [{"type": "text", "text": "Maria"}, {"type": "text", "text": "20%"}],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "0",
                "parameters": [{"type": "payload", "payload": "book"}],
            },
        ],
    )

    names = [m["message"]["template"]["name"] for m in sent(sandbox)]
    assert names == [
        "welcome",
        "appointment_reminder",
        "appointment_confirmed",
        "promo_header_image",
    ]


def test_the_sandbox_rejects_template_parameter_mismatches(client):
    with pytest.raises(TemplateError) as excinfo:
        client.send_template(CUSTOMER, "appointment_reminder", "pt_BR")
    missing = excinfo.value
    with pytest.raises(TemplateError) as excinfo:
        client.send_template(CUSTOMER, "does_not_exist", "pt_BR")

    assert missing.code == 132000 and "expected number of params (4)" in missing.details
    assert excinfo.value.code == 132001
    assert not excinfo.value.retryable


def test_it_sends_reactions_and_marks_messages_read(client, sandbox):
    inbound = sandbox.app.send_inbound(PNID, {"from": CUSTOMER, "text": "Oi"})

    client.send_reaction(CUSTOMER, inbound["wamid"], "👍")
    client.send_reaction(CUSTOMER, inbound["wamid"], "")
    assert client.mark_read(inbound["wamid"], typing=True) is True

    assert last_message(sandbox)["reaction"] == {"message_id": inbound["wamid"], "emoji": ""}
    record = sandbox.app.messages(PNID, direction="inbound")[0]
    assert record["read_by_business"] is True and record["typing_indicator_at"]


def test_mark_read_of_an_unknown_message_is_an_invalid_request(client):
    with pytest.raises(InvalidRequestError):
        client.mark_read("wamid.UNKNOWN")


# --- Templates and number -----------------------------------------------------------------------


def test_it_lists_templates_following_every_page(client):
    templates = client.list_templates(page_size=1)

    assert sorted(t["name"] for t in templates) == [
        "appointment_confirmed",
        "appointment_reminder",
        "promo_header_image",
        "welcome",
    ]
    assert all(t["status"] == "APPROVED" and t["language"] == "pt_BR" for t in templates)


def test_it_creates_a_template_that_is_approved_later(client, sandbox, register, receiver):
    register(template_review_delay=0.05)
    created = client.create_template(
        "lembrete_retorno",
        "pt_BR",
        "utility",
        [
            {
                "type": "BODY",
                "text": "Olá {{1}}, está na hora do seu retorno. Vamos agendar?",
                "example": {"body_text": [["Maria"]]},
            }
        ],
    )

    assert created["status"] == "PENDING" and created["category"] == "UTILITY"
    receiver.wait_for(lambda items: any(b"message_template_status_update" in r.body for r in items))
    statuses = {t["name"]: t["status"] for t in client.list_templates()}
    assert statuses["lembrete_retorno"] == "APPROVED"
    assert client.delete_template("lembrete_retorno") is True


def test_it_checks_template_parameters_against_a_definition_before_sending(client, sandbox):
    definition = next(t for t in client.list_templates() if t["name"] == "appointment_reminder")
    session = CountingSession()
    counted = make_client(sandbox, session=session)

    with pytest.raises(ValidationError, match="expected number of params"):
        counted.send_template(
            CUSTOMER,
            "appointment_reminder",
            "pt_BR",
            [{"type": "body", "parameters": [{"type": "text", "text": "x"}]}],
            definition=definition,
        )
    assert session.calls == 0


def test_it_reads_the_phone_number(client):
    info = client.get_phone_number()

    assert info.id == PNID
    assert info.display_phone_number == "+55 11 4000-0000"
    assert info.quality_rating == "GREEN"
    assert info.messaging_limit_tier == "TIER_2K"
    assert info.throughput_level == "STANDARD"


# --- Validation before any call -----------------------------------------------------------------


def button(index, title=None, reply_id=None):
    return {
        "type": "reply",
        "reply": {"id": reply_id or f"b{index}", "title": title or f"Opção {index}"},
    }


def interactive_list(rows, section_title="Horários", sections=1):
    return {
        "type": "list",
        "body": {"text": "Escolha"},
        "action": {
            "button": "Ver",
            "sections": [{"title": section_title, "rows": rows}] * sections,
        },
    }


INVALID_CALLS = {
    "text over 4096": lambda c: c.send_text(CUSTOMER, "x" * 4097),
    "empty text": lambda c: c.send_text(CUSTOMER, ""),
    "bad phone": lambda c: c.send_text("abc", "hi"),
    "empty recipient": lambda c: c.send_text("", "hi"),
    "callback data over 512": lambda c: c.send_text(CUSTOMER, "hi", callback_data="x" * 513),
    "caption over 1024": lambda c: c.send_media(
        CUSTOMER, "image", media_id="1", caption="x" * 1025
    ),
    "caption on a sticker": lambda c: c.send_media(CUSTOMER, "sticker", media_id="1", caption="no"),
    "media id and link": lambda c: c.send_media(
        CUSTOMER, "image", media_id="1", link="https://x/y.png"
    ),
    "media without source": lambda c: c.send_media(CUSTOMER, "image"),
    "bad link": lambda c: c.send_media(CUSTOMER, "image", link="ftp://x/y.png"),
    "unknown media kind": lambda c: c.send_media(CUSTOMER, "gif", media_id="1"),
    "latitude 91": lambda c: c.send_location(CUSTOMER, latitude=91, longitude=0),
    "contact without name": lambda c: c.send_contacts(CUSTOMER, [{"phones": []}]),
    "no contacts": lambda c: c.send_contacts(CUSTOMER, []),
    "four buttons": lambda c: c.send_interactive(
        CUSTOMER, {**BUTTONS, "action": {"buttons": [button(i) for i in range(4)]}}
    ),
    "button title 21": lambda c: c.send_interactive(
        CUSTOMER, {**BUTTONS, "action": {"buttons": [button(0, "x" * 21)]}}
    ),
    "duplicate button ids": lambda c: c.send_interactive(
        CUSTOMER,
        {**BUTTONS, "action": {"buttons": [button(0, reply_id="a"), button(1, reply_id="a")]}},
    ),
    "body over 1024": lambda c: c.send_interactive(
        CUSTOMER, {**BUTTONS, "body": {"text": "x" * 1025}}
    ),
    "header over 60": lambda c: c.send_interactive(
        CUSTOMER, {**BUTTONS, "header": {"type": "text", "text": "x" * 61}}
    ),
    "footer over 60": lambda c: c.send_interactive(
        CUSTOMER, {**BUTTONS, "footer": {"text": "x" * 61}}
    ),
    "missing body": lambda c: c.send_interactive(
        CUSTOMER, {"type": "button", "action": BUTTONS["action"]}
    ),
    "eleven rows": lambda c: c.send_interactive(
        CUSTOMER, interactive_list([{"id": f"r{i}", "title": f"Linha {i}"} for i in range(11)])
    ),
    "ten rows across two sections": lambda c: c.send_interactive(
        CUSTOMER,
        interactive_list([{"id": f"r{i}", "title": f"Linha {i}"} for i in range(6)], sections=2),
    ),
    "row title 25": lambda c: c.send_interactive(
        CUSTOMER, interactive_list([{"id": "r", "title": "x" * 25}])
    ),
    "row description 73": lambda c: c.send_interactive(
        CUSTOMER, interactive_list([{"id": "r", "title": "ok", "description": "x" * 73}])
    ),
    "untitled sections": lambda c: c.send_interactive(
        CUSTOMER,
        {
            "type": "list",
            "body": {"text": "x"},
            "action": {
                "button": "Ver",
                "sections": [
                    {"rows": [{"id": "a", "title": "A"}]},
                    {"rows": [{"id": "b", "title": "B"}]},
                ],
            },
        },
    ),
    "list image header": lambda c: c.send_interactive(
        CUSTOMER, {**LIST, "header": {"type": "image", "image": {"id": "1"}}}
    ),
    "list button 21": lambda c: c.send_interactive(
        CUSTOMER, {**LIST, "action": {**LIST["action"], "button": "x" * 21}}
    ),
    "cta text 21": lambda c: c.send_interactive(
        CUSTOMER,
        {
            **CTA,
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": "x" * 21, "url": "https://x.y"},
            },
        },
    ),
    "cta bad url": lambda c: c.send_interactive(
        CUSTOMER,
        {
            **CTA,
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": "Abrir", "url": "javascript:x"},
            },
        },
    ),
    "unknown interactive type": lambda c: c.send_interactive(CUSTOMER, {"type": "carrousel"}),
    "template without name": lambda c: c.send_template(CUSTOMER, "", "pt_BR"),
    "template mixed parameters": lambda c: c.send_template(
        CUSTOMER,
        "t",
        "pt_BR",
        [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "a", "parameter_name": "a"},
                    {"type": "text", "text": "b"},
                ],
            }
        ],
    ),
    "template empty text parameter": lambda c: c.send_template(
        CUSTOMER, "t", "pt_BR", [{"type": "body", "parameters": [{"type": "text", "text": ""}]}]
    ),
    "template newline parameter": lambda c: c.send_template(
        CUSTOMER, "t", "pt_BR", [{"type": "body", "parameters": [{"type": "text", "text": "a\nb"}]}]
    ),
    "template button without index": lambda c: c.send_template(
        CUSTOMER, "t", "pt_BR", [{"type": "button", "sub_type": "quick_reply", "parameters": []}]
    ),
    "reaction with letters": lambda c: c.send_reaction(CUSTOMER, "wamid.X", "ok"),
    "upload unsupported type": lambda c: c.upload_media(b"GIF89a", "image/gif", "a.gif"),
    "upload sticker too big": lambda c: c.upload_media(b"x" * 600_000, "image/webp", "s.webp"),
    "upload empty": lambda c: c.upload_media(b"", "image/png", "e.png"),
    "create bad name": lambda c: c.create_template(
        "Lembrete!", "pt_BR", "UTILITY", [{"type": "BODY", "text": "Oi"}]
    ),
    "create positional gap": lambda c: c.create_template(
        "t",
        "pt_BR",
        "UTILITY",
        [{"type": "BODY", "text": "Oi {{1}} e {{3}} ok", "example": {"body_text": [["a", "b"]]}}],
    ),
    "create leading variable": lambda c: c.create_template(
        "t",
        "pt_BR",
        "UTILITY",
        [{"type": "BODY", "text": "{{1}}, tudo bem?", "example": {"body_text": [["a"]]}}],
    ),
    "create mixed variables": lambda c: c.create_template(
        "t",
        "pt_BR",
        "UTILITY",
        [{"type": "BODY", "text": "Oi {{1}} e {{nome}} ok", "example": {"body_text": [["a"]]}}],
    ),
    "create missing example": lambda c: c.create_template(
        "t", "pt_BR", "UTILITY", [{"type": "BODY", "text": "Oi {{1}} tudo bem?"}]
    ),
    "create long button": lambda c: c.create_template(
        "t",
        "pt_BR",
        "MARKETING",
        [
            {"type": "BODY", "text": "Oi"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "x" * 26}]},
        ],
    ),
    "create bad category": lambda c: c.create_template(
        "t", "pt_BR", "PROMO", [{"type": "BODY", "text": "Oi"}]
    ),
}


@pytest.mark.parametrize("call", INVALID_CALLS.values(), ids=INVALID_CALLS.keys())
def test_invalid_calls_raise_validation_error_before_any_request(sandbox, number, call):
    session = CountingSession()
    client = make_client(sandbox, session=session)

    with pytest.raises(ValidationError) as excinfo:
        call(client)

    error = excinfo.value
    assert error.code is None and not error.retryable and error.permanent
    assert error.message
    assert session.calls == 0
    assert sandbox.app.messages(PNID) == []


# --- Retries and final errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (131026, RecipientError),
        (131047, WindowClosedError),
        (131050, RecipientError),
        (132001, TemplateError),
        (368, AccountError),
        (100, InvalidRequestError),
    ],
)
def test_final_errors_are_raised_without_retrying(client, sandbox, code, error_class):
    sandbox.app.inject_failure(PNID, code=code, count=2)

    with pytest.raises(error_class) as excinfo:
        client.send_text(CUSTOMER, "hi")

    assert excinfo.value.code == code
    assert not excinfo.value.retryable
    assert sandbox.app.number(PNID)["pending_failures"] == 1  # one attempt only
    assert sent(sandbox) == []


def test_a_server_error_on_a_send_is_not_retried_because_it_may_have_gone_out(client, sandbox):
    sandbox.app.inject_failure(PNID, http_status=503, count=2)

    with pytest.raises(ServerError) as excinfo:
        client.send_text(CUSTOMER, "hi")

    assert excinfo.value.ambiguous and excinfo.value.retryable
    assert sandbox.app.number(PNID)["pending_failures"] == 1  # one attempt only


def test_a_send_meta_took_before_failing_is_ambiguous_and_sent_once(client, sandbox):
    sandbox.app.inject_failure(PNID, code=131000, mode="accept_fail", count=5)

    with pytest.raises(ServerError) as excinfo:
        client.send_text(CUSTOMER, "hi", callback_data="m:1")

    assert excinfo.value.ambiguous and excinfo.value.code == 131000
    assert excinfo.value.http_status == 500
    assert [m["callback_data"] for m in sent(sandbox)] == ["m:1"]


def test_a_send_meta_took_but_never_answered_is_ambiguous(sandbox, number):
    sandbox.app.inject_failure(PNID, mode="accept_timeout", hang_seconds=1.0)
    client = make_client(sandbox, timeout=(1, 0.2))

    with pytest.raises(ServerError) as excinfo:
        client.send_text(CUSTOMER, "hi")

    assert excinfo.value.ambiguous and excinfo.value.title == "No response"
    assert len(sent(sandbox)) == 1


def test_throttling_is_retried_honouring_retry_after_then_succeeds(client, sandbox, caplog):
    sandbox.app.inject_failure(PNID, code=130429, http_status=429, retry_after=0.15, count=2)
    caplog.set_level(logging.WARNING, logger="integrations.whatsapp.client")
    started = time.monotonic()

    wamid = client.send_text(CUSTOMER, "hi")

    assert time.monotonic() - started >= 0.3  # two waits of at least Retry-After
    assert wamid.startswith("wamid.")
    retries = [r for r in caplog.records if "retry_in=" in r.getMessage()]
    assert len(retries) == 2 and "code=130429" in retries[0].getMessage()


def test_a_wait_longer_than_max_retry_delay_is_left_to_the_caller(client, sandbox):
    sandbox.app.inject_failure(PNID, code=131056, count=1)
    started = time.monotonic()

    with pytest.raises(ThrottledError) as excinfo:
        client.send_text(CUSTOMER, "hi")

    assert time.monotonic() - started < 0.5
    assert excinfo.value.retryable and excinfo.value.retry_after == 6


def test_an_invalid_token_is_a_final_auth_error(sandbox, number):
    client = make_client(sandbox, access_token="EAAG-wrong")

    with pytest.raises(AuthError) as excinfo:
        client.send_text(CUSTOMER, "hi")

    assert excinfo.value.code == 190 and excinfo.value.http_status == 401
    assert not excinfo.value.retryable


def test_connection_refused_is_retried_then_raised_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = CloudAPIClient(
        base_url=f"http://127.0.0.1:{port}",
        api_version=API_VERSION,
        phone_number_id=PNID,
        access_token=ACCESS_TOKEN,
        max_retries=2,
        backoff_base=0.01,
    )

    with pytest.raises(ServerError) as excinfo:
        client.send_text(CUSTOMER, "hi")

    assert excinfo.value.retryable and not excinfo.value.ambiguous


def test_a_lost_answer_to_a_send_is_not_retried_because_it_may_have_gone_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []

    def accept_and_hang():
        listener.settimeout(3)
        try:
            while True:
                connection, _ = listener.accept()
                accepted.append(connection)
        except OSError:
            pass

    thread = threading.Thread(target=accept_and_hang, daemon=True)
    thread.start()
    client = CloudAPIClient(
        base_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
        api_version=API_VERSION,
        phone_number_id=PNID,
        access_token=ACCESS_TOKEN,
        timeout=(1, 0.2),
        backoff_base=0.01,
    )
    try:
        with pytest.raises(ServerError) as excinfo:
            client.send_text(CUSTOMER, "hi")
        assert excinfo.value.ambiguous and excinfo.value.retryable
        assert len(accepted) == 1
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


def test_retry_delays_grow_exponentially_with_jitter(sandbox):
    client = make_client(
        sandbox, backoff_base=1.0, backoff_max=8.0, max_retry_delay=100, max_retries=10
    )
    error = ServerError("x", retryable=True)

    for attempt, backoff in enumerate([1, 2, 4, 8, 8]):
        delays = [client._retry_delay(error, attempt) for _ in range(50)]
        assert all(backoff / 2 <= d <= backoff for d in delays)
        assert len(set(delays)) > 1
    assert client._retry_delay(ServerError("x", retryable=False), 0) is None
    assert client._retry_delay(error, 10) is None


# --- Secrets stay out of logs -------------------------------------------------------------------


def test_the_access_token_never_appears_in_logs_or_errors(sandbox, number, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(sandbox)
    media_id = client.upload_media(png(), "image/png", "x.png")
    client.fetch_media(media_id)
    client.send_text(CUSTOMER, "hi")
    sandbox.app.inject_failure(PNID, http_status=503, count=1)
    with pytest.raises(ServerError):
        client.send_text(CUSTOMER, "again")
    sandbox.app.inject_failure(PNID, code=131026)
    with pytest.raises(RecipientError) as excinfo:
        client.send_text(CUSTOMER, "fails")

    assert PNID in caplog.text and "wamid." in caplog.text
    assert "urllib3" in caplog.text  # the HTTP layer logged too
    for text in (
        caplog.text,
        repr(client),
        str(excinfo.value),
        repr(excinfo.value),
        str(excinfo.value.to_dict()),
    ):
        assert ACCESS_TOKEN not in text


def test_every_client_shares_one_pooled_session(sandbox):
    first, second = make_client(sandbox), make_client(sandbox, phone_number_id="1")

    assert first._session is second._session is shared_session()
    adapter = shared_session().get_adapter("https://graph.facebook.com")
    assert adapter._pool_maxsize >= 32
    assert client_module.POOL_SIZE >= 32


# --- Mapping Graph error bodies -----------------------------------------------------------------


def graph_body(code, **extra):
    return {
        "error": {
            "message": f"(#{code}) Something",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "Details"},
            "fbtrace_id": "Az8or2yhqkZfEZ",
            **extra,
        }
    }


@pytest.mark.parametrize(
    ("code", "status", "error_class", "retryable"),
    [
        (0, 401, AuthError, False),
        (190, 401, AuthError, False),
        (10, 403, AuthError, False),
        (200, 403, AuthError, False),
        (299, 403, AuthError, False),
        (3, 500, AuthError, False),
        (4, 400, ThrottledError, True),
        (4, 429, ThrottledError, True),
        (613, 400, ThrottledError, True),
        (80007, 400, ThrottledError, True),
        (130429, 400, ThrottledError, True),
        (131056, 400, PairThrottledError, True),
        (131048, 400, SpamThrottledError, True),
        (131057, 400, ThrottledError, True),
        (1, 500, ServerError, True),
        (2, 503, ServerError, True),
        (131000, 500, ServerError, True),
        (131016, 503, ServerError, True),
        (100, 400, InvalidRequestError, False),
        (131008, 400, InvalidRequestError, False),
        (131009, 400, InvalidRequestError, False),
        (131051, 400, InvalidRequestError, False),
        (131026, 400, RecipientError, False),
        (131030, 400, RecipientError, False),
        (131049, 400, RecipientError, False),
        (131050, 400, RecipientError, False),
        (131047, 400, WindowClosedError, False),
        (131052, 400, MediaError, False),
        (131053, 400, MediaError, False),
        (131031, 400, AccountError, False),
        (368, 400, AccountError, False),
        (130497, 400, AccountError, False),
        (131042, 400, AccountError, False),
        (132000, 400, TemplateError, False),
        (132001, 400, TemplateError, False),
        (132005, 400, TemplateError, False),
        (132007, 400, TemplateError, False),
        (132012, 400, TemplateError, False),
        (132015, 400, TemplateError, True),
        (132016, 400, TemplateError, False),
        (132068, 400, TemplateError, False),
        (132069, 400, TemplateError, True),
        (132999, 400, TemplateError, False),
        (2388040, 400, TemplateError, False),
    ],
)
def test_error_codes_map_to_the_reference_table(code, status, error_class, retryable):
    error = error_from_response(status, graph_body(code))

    assert type(error) is error_class
    assert error.code == code and error.http_status == status
    assert error.retryable is retryable and error.permanent is not retryable
    assert error.details == "Details" and error.fbtrace_id == "Az8or2yhqkZfEZ"
    assert error.message  # a sentence for the agent


def test_unknown_codes_and_bodies_fall_back_on_the_http_status():
    assert type(error_from_response(502, "<html>Bad gateway</html>")) is ServerError
    assert error_from_response(502, None).retryable
    assert type(error_from_response(429, {})) is ThrottledError
    assert type(error_from_response(401, {"error": {"message": "x"}})) is AuthError
    unknown = error_from_response(400, graph_body(999999))
    assert type(unknown) is WhatsAppError and not unknown.retryable
    transient = error_from_response(400, graph_body(999999, is_transient=True))
    assert type(transient) is ServerError and transient.retryable


def test_retry_after_headers_are_honoured_in_seconds_or_dates():
    seconds = error_from_response(429, graph_body(130429), headers={"Retry-After": "7"})
    date = error_from_response(
        429,
        graph_body(130429),
        headers={
            "Retry-After": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
        },
    )
    default = error_from_response(400, graph_body(131056))

    assert seconds.retry_after == 7
    assert 25 <= date.retry_after <= 31
    assert default.retry_after == 6


def test_titles_come_from_graph_messages_without_the_code_prefix():
    error = error_from_response(
        400, {"error": {"message": "(#131047) Re-engagement message", "code": 131047}}
    )

    assert error.title == "Re-engagement message"
    assert str(error).startswith("#131047 Re-engagement message")
    assert error.to_dict()["kind"] == "WindowClosedError"
