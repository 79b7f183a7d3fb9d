import contextlib
import copy
import json
import random
from datetime import UTC, datetime

import pytest

from integrations.whatsapp import payloads as wa
from integrations.whatsapp.errors import RecipientError, WindowClosedError
from integrations.whatsapp.payloads import (
    AccountEvent,
    InboundMessage,
    PayloadError,
    PhoneNumberQualityUpdate,
    StatusUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    ValueErrors,
    parse_webhook,
    parse_webhook_bytes,
)

WABA = "1234567890987654321"
PNID = "1122334455667"
DISPLAY = "972123456789"
USER = "972987654321"


def messages_body(*messages, contacts=None, statuses=None, errors=None):
    """A Meta-shaped ``messages`` webhook, written out literally as in Meta's samples."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
    }
    if contacts is None and messages:
        contacts = [{"profile": {"name": "Test Name"}, "wa_id": USER}]
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = statuses
    if errors:
        value["errors"] = errors
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "changes": [{"value": value, "field": "messages"}]}],
    }


def message(message_type, content, **extra):
    item = {"from": USER, "id": "wamid.xyzxyz", "timestamp": "1697043223", "type": message_type}
    if content is not None:
        item[message_type] = content
    item.update(extra)
    return item


def parse_one(body):
    events = parse_webhook(body)
    assert len(events) == 1
    return events[0]


# --- Every inbound type -------------------------------------------------------------------------


def test_it_parses_a_text_message():
    event = parse_one(messages_body(message("text", {"body": "Body Text"})))

    assert isinstance(event, InboundMessage)
    assert event.kind == "message"
    assert (event.phone_number_id, event.display_phone_number, event.waba_id) == (
        PNID,
        DISPLAY,
        WABA,
    )
    assert (event.wa_id, event.profile_name, event.wamid) == (USER, "Test Name", "wamid.xyzxyz")
    assert event.timestamp == datetime(2023, 10, 11, 16, 53, 43, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    assert event.type == "text"
    assert event.content == {"body": "Body Text"}
    assert event.text == "Body Text"
    assert event.context is None and event.referral is None and event.errors == ()


@pytest.mark.parametrize(
    ("message_type", "content"),
    [
        (
            "image",
            {
                "caption": "a photo",
                "mime_type": "image/jpeg",
                "sha256": "4654+8g=",
                "id": "65463453",
            },
        ),
        (
            "video",
            {
                "caption": "a video",
                "mime_type": "video/mp4",
                "sha256": "Jh+2ij6P=",
                "id": "765756756",
            },
        ),
        (
            "document",
            {
                "caption": "exam",
                "filename": "exame.pdf",
                "mime_type": "application/pdf",
                "sha256": "grwfwe/ZP=",
                "id": "1234567890987654321",
            },
        ),
        (
            "sticker",
            {"mime_type": "image/webp", "sha256": "OmT4nhj=", "id": "42", "animated": False},
        ),
    ],
)
def test_it_parses_media_messages(message_type, content):
    event = parse_one(messages_body(message(message_type, content)))

    assert event.type == message_type
    assert event.media_id == content["id"]
    assert event.mime_type == content["mime_type"]
    assert event.sha256 == content["sha256"]
    assert event.filename == content.get("filename")
    assert event.caption == content.get("caption")
    assert event.text == content.get("caption", "")


def test_it_parses_voice_and_audio_files():
    voice = parse_one(
        messages_body(
            message(
                "audio",
                {
                    "mime_type": "audio/ogg; codecs=opus",
                    "sha256": "m04p=",
                    "id": "1",
                    "voice": True,
                },
            )
        )
    )
    audio = parse_one(
        messages_body(
            message(
                "audio",
                {
                    "mime_type": "audio/ogg; codecs=opus",
                    "sha256": "E3dx=",
                    "id": "2",
                    "voice": False,
                },
            )
        )
    )

    assert voice.is_voice and voice.mime_type == "audio/ogg; codecs=opus"
    assert not audio.is_voice and audio.media_id == "2"


def test_it_parses_media_with_a_lookaside_url():
    content = {
        "mime_type": "image/jpeg",
        "sha256": "x",
        "id": "9",
        "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=9",
    }
    event = parse_one(messages_body(message("image", content)))

    assert event.content["url"].startswith("https://lookaside")


def test_it_parses_locations_with_and_without_a_name():
    chosen = parse_one(
        messages_body(
            message(
                "location",
                {
                    "latitude": 37.4611978,
                    "longitude": -122.2164385,
                    "name": "Facebook HQ",
                    "address": "1 Hacker Way, Menlo Park, CA 94025",
                    "url": "https://maps.google.com/?cid=2000000000000000000",
                },
            )
        )
    )
    current = parse_one(
        messages_body(message("location", {"latitude": 12.25089, "longitude": 43.90539}))
    )

    assert chosen.content["latitude"] == 37.4611978
    assert chosen.text == "Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025"
    assert current.content == {"latitude": 12.25089, "longitude": 43.90539}
    assert current.text == ""


def test_it_parses_shared_contacts():
    cards = [
        {
            "name": {
                "first_name": "Chandler",
                "last_name": "Bing",
                "formatted_name": "Chandler Bing",
            },
            "phones": [{"phone": "+1 555-555-5555", "wa_id": USER, "type": "CELL"}],
        },
        {
            "name": {"first_name": "Monica", "formatted_name": "Monica"},
            "phones": [{"phone": "+1 666-666-6666", "type": "HOME"}],
            "emails": [{"email": "m@example.com", "type": "WORK"}],
        },
    ]
    event = parse_one(messages_body(message("contacts", cards)))

    assert event.type == "contacts"
    assert event.content == {"contacts": cards}
    assert event.text == "Chandler Bing, Monica"


def test_it_parses_a_reply_button_tap_with_context():
    event = parse_one(
        messages_body(
            message(
                "interactive",
                {"type": "button_reply", "button_reply": {"id": "confirm", "title": "Confirmar"}},
                context={"from": DISPLAY, "id": "wamid.original=="},
            )
        )
    )

    assert event.type == "interactive"
    assert event.content["type"] == "button_reply"
    assert event.reply_id == "confirm"
    assert event.text == "Confirmar"
    assert event.reply_to_wamid == "wamid.original=="


def test_it_parses_a_list_reply_with_and_without_description():
    with_description = parse_one(
        messages_body(
            message(
                "interactive",
                {
                    "type": "list_reply",
                    "list_reply": {"id": "slot-1", "title": "Seg 14h", "description": "Dra. Ana"},
                },
            )
        )
    )
    without = parse_one(
        messages_body(
            message(
                "interactive",
                {"type": "list_reply", "list_reply": {"id": "slot-2", "title": "Ter 9h"}},
            )
        )
    )

    assert with_description.reply_id == "slot-1"
    assert with_description.content["list_reply"]["description"] == "Dra. Ana"
    assert without.text == "Ter 9h"


def test_it_parses_a_flow_reply_whose_response_json_is_a_string():
    response_json = json.dumps({"flow_token": "abc", "date": "2026-05-12"})
    event = parse_one(
        messages_body(
            message(
                "interactive",
                {
                    "type": "nfm_reply",
                    "nfm_reply": {"name": "flow", "body": "Sent", "response_json": response_json},
                },
            )
        )
    )

    assert json.loads(event.content["nfm_reply"]["response_json"])["flow_token"] == "abc"
    assert event.text == "Sent"


def test_it_parses_a_template_quick_reply_button_with_and_without_context():
    with_context = parse_one(
        messages_body(
            message(
                "button",
                {"payload": "stop", "text": "Parar promoções"},
                context={"from": DISPLAY, "id": "wamid.template"},
            )
        )
    )
    without_context = parse_one(messages_body(message("button", {"payload": "yes", "text": "Sim"})))

    assert with_context.reply_id == "stop"
    assert with_context.text == "Parar promoções"
    assert with_context.reply_to_wamid == "wamid.template"
    assert without_context.context is None and without_context.reply_id == "yes"


@pytest.mark.parametrize(
    ("content", "emoji"),
    [
        (json.loads('{"message_id": "wamid.yzxyzx=", "emoji": "\\ud83d\\ude2e"}'), "😮"),
        ({"message_id": "wamid.yzxyzx=", "emoji": ""}, ""),
        ({"message_id": "wamid.yzxyzx="}, ""),
    ],
)
def test_it_parses_reactions_and_their_removal(content, emoji):
    event = parse_one(messages_body(message("reaction", content)))

    assert event.reaction_wamid == "wamid.yzxyzx="
    assert event.text == emoji


def test_it_parses_an_order():
    order = {
        "catalog_id": "354160437058781",
        "text": "",
        "product_items": [
            {"product_retailer_id": "HAMBURGER", "quantity": 3, "item_price": 30, "currency": "ILS"}
        ],
    }
    event = parse_one(messages_body(message("order", order)))

    assert event.content["product_items"][0]["quantity"] == 3


def test_it_parses_system_messages_without_contacts_or_from():
    changed_number = message(
        "system",
        {
            "body": "User A changed from 972987654321 to 972912345678",
            "wa_id": "972912345678",
            "type": "user_changed_number",
        },
    )
    changed_user_id = {
        "id": "wamid.xyzxyz==",
        "timestamp": "1753851315",
        "type": "system",
        "system": {
            "body": "User changed from CO.1234567890 to MX.0987654321",
            "user_id": "MX.0987654321",
            "previous_user_id": "CO.1234567890",
            "type": "user_changed_user_id",
        },
    }
    events = parse_webhook(messages_body(changed_number, changed_user_id, contacts=[]))

    assert [e.content["type"] for e in events] == ["user_changed_number", "user_changed_user_id"]
    assert events[0].content["wa_id"] == "972912345678"
    assert events[0].profile_name == ""
    assert events[1].wa_id == ""
    assert events[1].text.startswith("User changed")


def test_it_keeps_the_identity_of_a_customer_identity_change():
    event = parse_one(
        messages_body(
            message(
                "system",
                {"body": "User identity changed", "type": "customer_identity_changed"},
                identity={
                    "acknowledged": True,
                    "created_timestamp": "1697044706",
                    "hash": "xyzxyz",
                },
            )
        )
    )

    assert event.content["identity"]["hash"] == "xyzxyz"


def test_it_parses_unsupported_messages_with_their_errors():
    event = parse_one(
        messages_body(
            message(
                "unsupported",
                None,
                errors=[
                    {
                        "code": 131051,
                        "title": "Message type unknown",
                        "message": "Message type unknown",
                        "error_data": {"details": "Message type is currently not supported."},
                    }
                ],
            )
        )
    )
    with_kind = parse_one(messages_body(message("unsupported", {"type": "pool"})))

    assert event.type == "unsupported"
    assert event.content == {}
    assert event.errors[0].code == 131051
    assert event.errors[0].details == "Message type is currently not supported."
    assert with_kind.content == {"type": "pool"}


def test_it_parses_edits_of_text_and_of_captions():
    text_edit = parse_one(
        messages_body(
            message(
                "edit",
                {
                    "original_message_id": "wamid.zzzzzz",
                    "message": {"type": "text", "text": {"body": "Text was edited"}},
                },
            )
        )
    )
    caption_edit = parse_one(
        messages_body(
            message(
                "edit",
                {
                    "original_message_id": "wamid.zzzzzz",
                    "message": {
                        "type": "image",
                        "image": {
                            "caption": "caption",
                            "mime_type": "image/jpeg",
                            "sha256": "4654+8g=",
                            "id": "65463453",
                        },
                    },
                },
            )
        )
    )

    assert text_edit.original_wamid == "wamid.zzzzzz"
    assert text_edit.text == "Text was edited"
    assert caption_edit.media_id == "65463453"
    assert caption_edit.caption == "caption"


def test_it_parses_a_revoke_with_bsuid_contacts():
    event = parse_one(
        messages_body(
            message("revoke", {"original_message_id": "wamid.original"}),
            contacts=[
                {
                    "profile": {"name": "Test Name"},
                    "wa_id": USER,
                    "user_id": "US.13491208655302741918",
                    "parent_user_id": "US.ENT.11815799212886844830",
                }
            ],
        )
    )

    assert event.type == "revoke"
    assert event.original_wamid == "wamid.original"
    assert event.user_id == "US.13491208655302741918"


def test_it_reads_forwarded_context_and_referral():
    referral = {
        "source_url": "https://fb.me/ad",
        "source_id": "ADID",
        "source_type": "ad",
        "headline": "Limpeza",
        "body": "20% off",
        "media_type": "image",
        "image_url": "https://x/y.jpg",
        "ctwa_clid": "CLID",
    }
    forwarded = parse_one(
        messages_body(message("text", {"body": "fw"}, context={"forwarded": True}))
    )
    many = parse_one(
        messages_body(message("text", {"body": "fw"}, context={"frequently_forwarded": True}))
    )
    from_ad = parse_one(messages_body(message("text", {"body": "hi"}, referral=referral)))

    assert forwarded.is_forwarded and many.is_forwarded
    assert forwarded.reply_to_wamid is None
    assert from_ad.referral["ctwa_clid"] == "CLID"


def test_it_accepts_an_interactive_message_without_body_when_the_value_reports_errors():
    """A real fixture: the body is missing and a value-level 131000 explains why."""
    body = messages_body(
        message("interactive", None, context={"from": DISPLAY, "id": "wamid.gvwegfretge=="}),
        errors=[
            {
                "code": 131000,
                "title": "Something went wrong",
                "message": "Something went wrong",
                "error_data": {"details": "Unsupported webhook payload"},
            }
        ],
    )
    inbound, value_errors = parse_webhook(body)

    assert inbound.type == "interactive" and inbound.content == {}
    assert isinstance(value_errors, ValueErrors)
    assert value_errors.errors[0].code == 131000


def test_it_keeps_unknown_future_message_types():
    event = parse_one(messages_body(message("poll", {"question": "?"})))

    assert event.type == "poll" and event.content == {"question": "?"}


# --- Statuses -----------------------------------------------------------------------------------


def test_it_parses_statuses_with_cbp_and_pmp_pricing():
    cbp = {
        "id": "wamid.1",
        "status": "sent",
        "timestamp": "1698266945",
        "recipient_id": USER,
        "biz_opaque_callback_data": "campaign:7",
        "conversation": {
            "id": "7270432eae",
            "expiration_timestamp": "1698339900",
            "origin": {"type": "service"},
        },
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
    }
    pmp = {
        "id": "wamid.2",
        "status": "read",
        "timestamp": "1698266950",
        "recipient_id": USER,
        "pricing": {
            "billable": False,
            "pricing_model": "PMP",
            "type": "free_customer_service",
            "category": "service",
        },
    }
    first, second = parse_webhook(messages_body(statuses=[cbp, pmp]))

    assert isinstance(first, StatusUpdate) and first.kind == "status"
    assert (first.wamid, first.status, first.recipient_id) == ("wamid.1", "sent", USER)
    assert first.conversation["origin"]["type"] == "service"
    assert first.biz_opaque_callback_data == "campaign:7"
    assert second.pricing["type"] == "free_customer_service"
    assert second.conversation is None
    assert second.timestamp == datetime.fromtimestamp(1698266950, UTC)


def test_it_parses_failed_statuses_with_errors():
    failed = {
        "id": "wamid.3",
        "status": "failed",
        "timestamp": "1708603746",
        "recipient_id": "15551340563",
        "errors": [
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {
                    "details": "Message failed to send because more than "
                    "24 hours have passed since the customer "
                    "last replied to this number."
                },
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/"
                "support/error-codes/",
            }
        ],
    }
    event = parse_one(messages_body(statuses=[failed]))

    assert event.status == "failed"
    assert event.error.code == 131047
    assert event.error.title == "Re-engagement message"
    assert "24 hours" in event.error.details
    assert event.error.href.startswith("https://developers.facebook.com")
    error = event.error.to_exception()
    assert isinstance(error, WindowClosedError)
    assert not error.retryable


def test_it_parses_several_messages_and_statuses_across_entries_and_changes():
    body = messages_body(
        message("text", {"body": "one"}),
        {**message("text", {"body": "two"}), "id": "wamid.two"},
        statuses=[
            {
                "id": "wamid.s1",
                "status": "delivered",
                "timestamp": "1698266945",
                "recipient_id": USER,
            }
        ],
    )
    second_entry = copy.deepcopy(body["entry"][0])
    second_entry["changes"].append(copy.deepcopy(second_entry["changes"][0]))
    second_entry["changes"][1]["value"]["metadata"]["phone_number_id"] = "999"
    body["entry"].append(second_entry)

    events = parse_webhook(body)

    assert [type(e).__name__ for e in events] == [
        "InboundMessage",
        "InboundMessage",
        "StatusUpdate",
    ] * 3
    assert [e.text for e in events if isinstance(e, InboundMessage)] == ["one", "two"] * 3
    assert events[-1].phone_number_id == "999"


def test_it_parses_value_level_errors():
    errors = [
        {
            "code": 130429,
            "title": "Rate limit hit",
            "message": "Rate limit hit",
            "error_data": {
                "details": "Message failed to send because there were too many "
                "messages sent from this phone number in a short "
                "period of time"
            },
            "href": "/documentation/business-messaging/whatsapp/support/error-codes",
        }
    ]
    event = parse_one(messages_body(errors=errors))

    assert isinstance(event, ValueErrors)
    assert event.errors[0].code == 130429
    assert event.errors[0].to_exception().retryable


# --- Other fields -------------------------------------------------------------------------------


def test_it_parses_template_status_updates():
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA,
                "time": 1751247548,
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "REJECTED",
                            "message_template_id": 1689556908129835,
                            "message_template_name": "abandoned_cart",
                            "message_template_language": "en",
                            "reason": "INVALID_FORMAT",
                            "message_template_category": "MARKETING",
                            "rejection_info": {"reason": "x", "recommendation": "y"},
                        },
                    }
                ],
            }
        ],
    }
    event = parse_one(body)

    assert isinstance(event, TemplateStatusUpdate)
    assert event.template_id == "1689556908129835"
    assert (event.template_name, event.language, event.event, event.reason) == (
        "abandoned_cart",
        "en",
        "REJECTED",
        "INVALID_FORMAT",
    )
    assert event.category == "MARKETING"
    assert event.rejection_info == {"reason": "x", "recommendation": "y"}
    assert event.timestamp == datetime.fromtimestamp(1751247548, UTC)


def test_it_parses_template_quality_and_phone_quality_updates_and_account_events():
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA,
                "time": 1674864290,
                "changes": [
                    {
                        "field": "message_template_quality_update",
                        "value": {
                            "previous_quality_score": "GREEN",
                            "new_quality_score": "YELLOW",
                            "message_template_id": 806312974732579,
                            "message_template_name": "welcome_template",
                            "message_template_language": "en-US",
                        },
                    },
                    {
                        "field": "phone_number_quality_update",
                        "value": {
                            "display_phone_number": "5491155555555",
                            "event": "FLAGGED",
                            "current_limit": "TIER_10K",
                        },
                    },
                    {
                        "field": "account_update",
                        "value": {
                            "event": "ACCOUNT_RESTRICTION",
                            "restriction_info": [
                                {
                                    "restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                                    "expiration": 1641330498,
                                }
                            ],
                        },
                    },
                    {"field": "template_category_update", "value": {"new_category": "MARKETING"}},
                ],
            }
        ],
    }
    quality, phone, account, category = parse_webhook(body)

    assert isinstance(quality, TemplateQualityUpdate)
    assert (quality.previous_quality_score, quality.new_quality_score) == ("GREEN", "YELLOW")
    assert isinstance(phone, PhoneNumberQualityUpdate)
    assert (phone.event, phone.current_limit) == ("FLAGGED", "TIER_10K")
    assert isinstance(account, AccountEvent) and account.event == "ACCOUNT_RESTRICTION"
    assert account.value["restriction_info"][0]["expiration"] == 1641330498
    assert isinstance(category, AccountEvent) and category.field == "template_category_update"
    assert category.event == ""


# --- The builders produce what the parser reads -------------------------------------------------


def built(message_type, content, **kwargs):
    return wa.build_webhook(
        WABA,
        [
            wa.build_messages_change(
                phone_number_id=PNID,
                display_phone_number=DISPLAY,
                contacts=[wa.build_contact(wa_id=USER, profile_name="Maria")],
                messages=[
                    wa.build_inbound_message(
                        wamid="wamid.B",
                        from_wa_id=USER,
                        message_type=message_type,
                        content=content,
                        **kwargs,
                    )
                ],
            )
        ],
    )


@pytest.mark.parametrize(
    ("message_type", "content", "text"),
    [
        ("text", wa.build_text("Olá"), "Olá"),
        (
            "image",
            wa.build_media(media_id="1", mime_type="image/png", sha256="AA==", caption="raio-x"),
            "raio-x",
        ),
        (
            "audio",
            wa.build_media(
                media_id="2", mime_type="audio/ogg; codecs=opus", sha256="AA==", voice=True
            ),
            "",
        ),
        (
            "document",
            wa.build_media(
                media_id="3", mime_type="application/pdf", sha256="AA==", filename="exame.pdf"
            ),
            "",
        ),
        (
            "sticker",
            wa.build_media(media_id="4", mime_type="image/webp", sha256="AA==", animated=False),
            "",
        ),
        ("location", wa.build_location(latitude=-23.5, longitude=-46.6, name="Clínica"), "Clínica"),
        (
            "contacts",
            [wa.build_contact_card(formatted_name="Ana Souza", phone="+55 11 9")],
            "Ana Souza",
        ),
        ("interactive", wa.build_button_reply(reply_id="yes", title="Sim"), "Sim"),
        (
            "interactive",
            wa.build_list_reply(reply_id="r1", title="Manhã", description="8h"),
            "Manhã",
        ),
        ("interactive", wa.build_flow_reply(response={"flow_token": "t"}), "Sent"),
        ("button", wa.build_template_button(payload="ok", text="Confirmar"), "Confirmar"),
        ("reaction", wa.build_reaction(message_id="wamid.A", emoji="👍"), "👍"),
        (
            "order",
            wa.build_order(
                catalog_id="1", product_items=[{"product_retailer_id": "X", "quantity": 1}]
            ),
            "",
        ),
        (
            "system",
            wa.build_system(
                system_type="user_changed_number", body="changed", wa_id="5511999999999"
            ),
            "changed",
        ),
        (
            "edit",
            wa.build_edit(
                original_message_id="wamid.A", message_type="text", content=wa.build_text("novo")
            ),
            "novo",
        ),
        ("revoke", wa.build_revoke(original_message_id="wamid.A"), ""),
    ],
)
def test_built_inbound_messages_parse_back(message_type, content, text):
    event = parse_one(json.loads(wa.encode_webhook(built(message_type, content))))

    assert event.type == message_type
    assert event.text == text
    assert event.profile_name == "Maria"


def test_built_statuses_and_template_changes_parse_back():
    error = wa.build_event_error(131026)
    body = wa.build_webhook(
        WABA,
        [
            wa.build_messages_change(
                phone_number_id=PNID,
                display_phone_number=DISPLAY,
                statuses=[
                    wa.build_status(
                        wamid="wamid.S", status="failed", recipient_id=USER, errors=[error]
                    )
                ],
            )
        ],
    )
    template = wa.build_webhook(
        WABA,
        [
            wa.build_template_status_change(
                template_id="123", name="welcome", language="pt_BR", event="APPROVED"
            )
        ],
        entry_time=1700000000,
    )

    status = parse_one(body)
    approved = parse_one(template)

    assert status.error.code == 131026
    assert isinstance(status.error.to_exception(), RecipientError)
    assert (approved.template_id, approved.event, approved.reason) == ("123", "APPROVED", "NONE")


def test_encode_webhook_is_ascii_json():
    raw = wa.encode_webhook(built("text", wa.build_text("Olá 😮")))

    assert raw.isascii()
    assert b"\\u00e1" in raw and b"\\ud83d\\ude2e" in raw
    assert parse_webhook_bytes(raw)[0].text == "Olá 😮"


# --- Unknown shapes -----------------------------------------------------------------------------


def valid_body():
    return messages_body(
        message("text", {"body": "hi"}),
        statuses=[
            {"id": "wamid.s", "status": "sent", "timestamp": "1698266945", "recipient_id": USER}
        ],
    )


def value_of(body):
    return body["entry"][0]["changes"][0]["value"]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: [], "body must be an object"),
        (lambda b: {**b, "object": "page"}, "not 'whatsapp_business_account'"),
        (lambda b: {**b, "entry": {}}, "body.entry must be a list"),
        (lambda b: b["entry"][0].pop("changes") and b, "entry[0].changes must be a list"),
        (lambda b: b["entry"][0]["changes"][0].pop("field") and b, "field is missing"),
        (lambda b: b["entry"][0]["changes"][0].update(value=None) or b, "value must be an object"),
        (lambda b: value_of(b).pop("metadata") and b, "metadata must be an object"),
        (lambda b: value_of(b)["metadata"].pop("phone_number_id") and b, "phone_number_id is"),
        (lambda b: value_of(b).update(messages={"a": 1}) or b, "messages must be a list"),
        (lambda b: value_of(b)["messages"][0].pop("id") and b, "messages[0].id is missing"),
        (lambda b: value_of(b)["messages"][0].pop("text") and b, "no 'text' object"),
        (lambda b: value_of(b)["messages"][0].update(text="hi") or b, "text must be an object"),
        (lambda b: value_of(b)["messages"][0].update(timestamp="soon") or b, "Unix seconds"),
        (lambda b: value_of(b)["messages"][0].update(type=None) or b, "type is missing"),
        (
            lambda b: value_of(b)["messages"][0].update(errors=[{"code": "x"}]) or b,
            "code is not an integer",
        ),
        (lambda b: value_of(b)["statuses"][0].pop("id") and b, "statuses[0].id is missing"),
        (lambda b: value_of(b)["statuses"][0].update(pricing=[]) or b, "pricing must be an"),
        (
            lambda b: [value_of(b).pop(k) for k in ("messages", "statuses")] and b,
            "none of messages, statuses or errors",
        ),
        (lambda b: value_of(b).update(contacts="Maria") or b, "contacts must be a list"),
    ],
)
def test_unknown_shapes_raise_payload_error_with_a_reason(mutate, reason):
    body = mutate(valid_body())

    with pytest.raises(
        PayloadError,
        match=reason.replace("[", r"\[")
        .replace("]", r"\]")
        .replace("(", r"\(")
        .replace(")", r"\)")
        .replace(".", r"\."),
    ):
        parse_webhook(body)


def test_invalid_json_bytes_raise_payload_error():
    with pytest.raises(PayloadError, match="not valid JSON"):
        parse_webhook_bytes(b"{nope")
    with pytest.raises(PayloadError):
        parse_webhook_bytes(b"\xff\xfe")


def test_random_damage_never_raises_anything_but_payload_error():
    """Delete keys, swap values for wrong types: the parser either copes or says why."""
    rng = random.Random(1234)
    junk = [None, 1, "x", [], {}, True, 1.5]
    source = messages_body(
        message(
            "image",
            {"mime_type": "image/png", "sha256": "A", "id": "1", "caption": "c"},
            context={"from": DISPLAY, "id": "wamid.c"},
        ),
        message("interactive", {"type": "button_reply", "button_reply": {"id": "a", "title": "A"}}),
        statuses=[
            {
                "id": "wamid.s",
                "status": "failed",
                "timestamp": "1",
                "recipient_id": USER,
                "errors": [{"code": 131026, "title": "t"}],
            }
        ],
    )

    def containers(node, found):
        if isinstance(node, dict | list):
            found.append(node)
            for child in node.values() if isinstance(node, dict) else node:
                containers(child, found)
        return found

    for _ in range(400):
        body = copy.deepcopy(source)
        for _ in range(rng.randint(1, 3)):
            target = rng.choice(containers(body, []))
            if isinstance(target, dict) and target:
                key = rng.choice(list(target))
                if rng.random() < 0.5:
                    del target[key]
                else:
                    target[key] = rng.choice(junk)
            elif isinstance(target, list) and target:
                target[rng.randrange(len(target))] = rng.choice(junk)
        with contextlib.suppress(PayloadError):
            parse_webhook(body)
