"""Properties of the webhook parser over Hypothesis-generated bodies: it reads a shape or says
why (``PayloadError``, never ``KeyError``/``TypeError``/``AttributeError``), and every value it
hands on can be stored: no NUL or lone surrogate, no string longer than its column."""

import json
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from integrations.whatsapp import payloads as wa
from tests.integrations.payload_strategies import (
    FUZZ,
    bodies,
    damaged_bodies,
    inbound_message,
    is_storable,
    junk,
    storable,
)

LIMITS = {
    "wa_id": wa.WA_ID_MAX,
    "user_id": wa.WA_ID_MAX,
    "profile_name": wa.PROFILE_NAME_MAX,
    "wamid": wa.WAMID_MAX,
    "status": wa.STATUS_MAX,
    "recipient_id": wa.WA_ID_MAX,
    "recipient_user_id": wa.WA_ID_MAX,
}


def assert_storable(value, where="") -> None:
    """Every string in ``value`` (keys too) is one PostgreSQL accepts."""
    if isinstance(value, str):
        assert is_storable(value), where
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_storable(key, where)
            assert_storable(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            assert_storable(item, where)


def assert_handed_on_safely(item) -> None:
    if isinstance(item, wa.RejectedItem):
        assert item.reason
        return
    for name, value in vars(item).items():
        if name == "raw":
            continue  # kept as received
        if isinstance(value, str):
            assert is_storable(value), name
            assert len(value) <= LIMITS.get(name, len(value)), name
        elif isinstance(value, dict | list):
            assert_storable(value, name)
    if isinstance(item, wa.InboundMessage):
        for name in ("media_id", "mime_type", "sha256", "filename", "caption", "reply_to_wamid"):
            assert isinstance(getattr(item, name), str | None), name
        for name in ("original_wamid", "reaction_wamid", "reply_id"):
            assert isinstance(getattr(item, name), str | None), name
        assert isinstance(item.text, str) and is_storable(item.text)
        assert isinstance(item.is_voice, bool) and isinstance(item.is_forwarded, bool)
        for wamid in (item.reply_to_wamid, item.original_wamid, item.reaction_wamid):
            assert wamid is None or len(wamid) <= wa.WAMID_MAX
        assert item.media_id is None or len(item.media_id) <= wa.MEDIA_ID_MAX
        assert item.mime_type is None or len(item.mime_type) <= wa.MIME_TYPE_MAX
        assert item.filename is None or len(item.filename) <= wa.FILENAME_MAX
    for error in getattr(item, "errors", ()):
        assert error.code is None or abs(error.code) <= wa.INT_MAX
        assert len(error.title) <= wa.ERROR_TITLE_MAX
        assert_storable([error.title, error.message, error.details, error.href])


def parse_or_refuse(body):
    try:
        return wa.parse_webhook_items(body)
    except wa.PayloadError as error:
        assert str(error)
        return []


@FUZZ
@given(st.one_of(damaged_bodies(), junk, st.dictionaries(st.text(), junk)))
def test_any_body_is_read_or_refused_with_a_reason(body):
    for item in parse_or_refuse(body):
        assert_handed_on_safely(item)


@FUZZ
@given(bodies())
def test_well_formed_items_are_read_and_broken_ones_rejected_where_they_sit(drawn):
    body, expected = drawn
    items = wa.parse_webhook_items(body)
    for item in items:
        assert_handed_on_safely(item)
    messages = {item.wamid for item in items if isinstance(item, wa.InboundMessage)}
    statuses = {item.wamid: item.status for item in items if isinstance(item, wa.StatusUpdate)}
    rejected = [item.where for item in items if isinstance(item, wa.RejectedItem)]
    assert messages == set(expected.stored)
    assert statuses == expected.statuses
    assert rejected == expected.rejected


@FUZZ
@given(inbound_message(0, changes=True))
def test_a_well_formed_message_keeps_its_values_cleaned_and_clamped(message):
    body = wa.build_webhook(
        "1000",
        [
            wa.build_messages_change(
                phone_number_id="1",
                display_phone_number="1",
                contacts=[{"wa_id": message["from"], "profile": {"name": "Ana\x00" * 100}}],
                messages=[message],
            )
        ],
    )
    (item,) = wa.parse_webhook(json.loads(json.dumps(body)))
    assert item.wamid == storable(message["id"], wa.WAMID_MAX)
    assert item.wa_id == storable(str(message["from"]), wa.WA_ID_MAX)
    assert item.profile_name == storable("Ana\x00" * 100, wa.PROFILE_NAME_MAX)
    assert isinstance(item.timestamp, datetime)
    if message["type"] == "text":
        assert item.text == storable(message["text"]["body"])
    assert item.raw == message  # the full values, as received
    assert_handed_on_safely(item)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.just(b"1"), lambda inner: inner.map(lambda b: b"[" + b + b"]"), max_leaves=3
        ),
        st.integers(900, 6000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.sampled_from([b"NaN", b"[Infinity]", b'{"a":-Infinity}', b"1e999", b"-1e400"]),
        junk.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    )
)
def test_loading_bytes_answers_a_json_value_or_payload_error(raw):
    try:
        value = wa.load_webhook(raw)
    except wa.PayloadError as error:
        assert str(error).startswith("body is not valid JSON")
        return
    assert json.dumps(value, allow_nan=False)  # nothing PostgreSQL's JSON would refuse
