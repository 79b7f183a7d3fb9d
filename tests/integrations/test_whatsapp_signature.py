import hashlib
import hmac
import json

import pytest

from integrations.whatsapp import signature
from integrations.whatsapp.payloads import encode_webhook
from integrations.whatsapp.signature import escape_unicode, sign, verify

SECRET = "app-secret"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def test_it_signs_with_lowercase_hex_hmac_sha256():
    header = sign(BODY, SECRET)

    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert header == f"sha256={expected}"
    assert header == header.lower()


def test_it_verifies_its_own_signature():
    assert verify(BODY, sign(BODY, SECRET), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + hashlib.sha1(BODY).hexdigest(),
        "sha256=" + "0" * 64,
        sign(BODY, "another-secret"),
        sign(BODY + b" ", SECRET),
        "garbage",
        "sha256=ééé",  # hmac.compare_digest raises TypeError on non-ASCII str
        "sha256=" + "é" * 64,
        "sha256=\ud83d",
        "sha256=ÃƒÂ©",  # UTF-8 read as Latin-1, as ASGI servers decode header bytes
    ],
)
def test_it_rejects_bad_headers(header):
    assert not verify(BODY, header, SECRET)


def test_it_rejects_an_empty_app_secret():
    assert not verify(BODY, sign(BODY, ""), "")


def test_it_accepts_uppercase_hex_and_surrounding_spaces():
    digest = sign(BODY, SECRET).removeprefix("sha256=")
    assert verify(BODY, f" sha256={digest.upper()} ", SECRET)


def test_it_rejects_a_tampered_body():
    header = sign(BODY, SECRET)
    assert not verify(BODY.replace(b"[]", b"[{}]"), header, SECRET)


def test_it_accepts_raw_utf8_bytes_signed_as_is():
    body = json.dumps({"text": "Olá, tudo bem? 😮"}, ensure_ascii=False).encode()
    assert verify(body, sign(body, SECRET), SECRET)


def test_it_accepts_raw_utf8_bytes_signed_in_escaped_unicode_form():
    """Meta's docs: the signature is computed over the escaped-unicode payload."""
    body = json.dumps({"text": "äöå 😮"}, ensure_ascii=False).encode()
    escaped = json.dumps({"text": "äöå 😮"}, ensure_ascii=True).encode()

    assert body != escaped
    assert verify(body, sign(escaped, SECRET), SECRET)


def test_escape_unicode_matches_ascii_json_with_lowercase_hex_and_surrogate_pairs():
    text = json.dumps({"name": "João", "emoji": "😮", "x": "ÄÖ"}, ensure_ascii=False)

    assert escape_unicode(text.encode()) == json.dumps(json.loads(text)).encode()
    assert escape_unicode("ä".encode()) == b"\\u00e4"
    assert escape_unicode("😮".encode()) == b"\\ud83d\\ude2e"


def test_escape_unicode_returns_none_for_non_utf8():
    assert escape_unicode(b"\xff\xfe") is None


def test_ascii_webhook_bodies_verify_in_both_styles():
    body = encode_webhook({"text": "Olá 😮"})

    assert body.isascii()
    assert verify(body, sign(body, SECRET), SECRET)
    assert escape_unicode(body) == body


def test_it_compares_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature.hmac, "compare_digest", spy)

    assert verify(BODY, sign(BODY, SECRET), SECRET)
    assert calls
