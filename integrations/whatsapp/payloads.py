"""Webhook payloads: parse Meta's bodies into events, and build Meta-shaped bodies.

``parse_webhook`` walks every level (``entry[] -> changes[] -> value.messages[] | statuses[] |
errors[]``; Meta batches) and returns frozen dataclasses. A body whose shape we do not recognise
raises ``PayloadError`` with the reason, never ``KeyError`` or ``TypeError``; store the body and
the reason for inspection. ``parse_webhook_items`` is the same walk for processing deliveries:
one item (a message, a status, a change) that cannot be read becomes a ``RejectedItem`` with its
reason, so the rest of the delivery still goes through.

Every value the parser hands on is safe to store: NUL and lone surrogates (which PostgreSQL
refuses) are replaced by U+FFFD in every string and in the objects handed on whole (a message's
content, context and referral), fields stored in columns are clamped to the column's length
(``raw`` keeps each item as received, full values included), a message's content nested deeper
than ``MAX_DEPTH`` is refused, and ``load_webhook`` refuses NaN/Infinity (not JSON, and refused
by PostgreSQL's JSON). Only what is handed on is cleaned, so a batch of statuses costs no walk
over the whole body.

The ``build_*`` functions produce the same shapes; the sandbox emits only what they build, so the
parser and the emulator share one definition.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from .errors import HREF, WhatsAppError, error_for_code, spec_for

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})

# The longest value each parsed field may carry: the length of the column it ends up in (the
# inbox's Contact, Message, Media and OrphanStatus, our WhatsAppNumber and MessageTemplate; a
# test checks they agree). Longer values are clamped here, so no receiver meets one.
WA_ID_MAX = 32  # Contact.wa_id (also the sender's user_id, used as the id when there is no wa_id)
PHONE_MAX = 20  # Contact.phone (derived from the wa_id by the inbox)
PROFILE_NAME_MAX = 255  # Contact.profile_name
WAMID_MAX = 128  # Message.wamid, Message.reply_to_wamid, OrphanStatus.wamid
STATUS_MAX = 10  # Message.status, OrphanStatus.status
ERROR_TITLE_MAX = 255  # Message.error_title
MEDIA_ID_MAX = 64  # Media.meta_media_id
MIME_TYPE_MAX = 100  # Media.mime_type
FILENAME_MAX = 255  # Media.filename
TEMPLATE_STATUS_MAX = 32  # MessageTemplate.status (a template status update's event)
TEMPLATE_REASON_MAX = 255  # MessageTemplate.rejected_reason
QUALITY_RATING_MAX = 20  # WhatsAppNumber.quality_rating (a phone quality update's event)
MESSAGING_LIMIT_MAX = 40  # WhatsAppNumber.messaging_limit
INT_MAX = 2**31 - 1  # integer columns (Message.error_code): larger error codes become None

# Meta's deepest content (an order's product items, an interactive reply) is 3 levels deep; an
# object nested far deeper is not Meta's, and storing it would only risk a RecursionError.
MAX_DEPTH = 32


class PayloadError(ValueError):
    """The webhook body does not have a shape we recognise; ``str(error)`` says where and why."""


# --- Events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventError:
    """One entry of an ``errors`` array (in a message, a status or a change value)."""

    code: int | None
    title: str
    message: str
    details: str
    href: str = ""

    def to_exception(self) -> WhatsAppError:
        """The typed exception for this error (e.g. ``WindowClosedError`` for 131047)."""
        return error_for_code(self.code, title=self.title, details=self.details or self.message)


@dataclass(frozen=True)
class InboundMessage:
    """A message a customer sent to the business number (``value.messages[i]``)."""

    kind: ClassVar[str] = "message"

    phone_number_id: str
    display_phone_number: str
    waba_id: str
    wa_id: str
    user_id: str
    profile_name: str
    wamid: str
    timestamp: datetime
    type: str
    content: dict[str, Any]
    context: dict[str, Any] | None = None
    referral: dict[str, Any] | None = None
    errors: tuple[EventError, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # The properties read ``content``, whose inner values are as the customer's app sent them:
    # each one hands on a string (clamped to its column) or None, never another type.

    @property
    def _media(self) -> dict[str, Any]:
        if self.type in MEDIA_TYPES:
            return self.content
        if self.type == "edit":
            inner = self.content.get("message") or {}
            inner_type = inner.get("type")
            if inner_type in MEDIA_TYPES and isinstance(inner.get(inner_type), dict):
                return inner[inner_type]
        return {}

    @property
    def media_id(self) -> str | None:
        return _text(self._media.get("id"), MEDIA_ID_MAX)

    @property
    def mime_type(self) -> str | None:
        return _text(self._media.get("mime_type"), MIME_TYPE_MAX)

    @property
    def sha256(self) -> str | None:
        """The media hash as the webhook gives it (base64-looking; ``GET /{media-id}`` is hex)."""
        return _text(self._media.get("sha256"))

    @property
    def filename(self) -> str | None:
        return _text(self._media.get("filename"), FILENAME_MAX)

    @property
    def caption(self) -> str | None:
        return _text(self._media.get("caption"))

    @property
    def is_voice(self) -> bool:
        return self.type == "audio" and bool(self.content.get("voice"))

    @property
    def text(self) -> str:
        """The human-readable text of the message ("" when it has none)."""
        return _message_text(self.type, self.content)

    @property
    def reply_to_wamid(self) -> str | None:
        """The wamid this message quotes or answers (reply, button tap)."""
        return _text((self.context or {}).get("id"), WAMID_MAX)

    @property
    def is_forwarded(self) -> bool:
        context = self.context or {}
        return bool(context.get("forwarded") or context.get("frequently_forwarded"))

    @property
    def original_wamid(self) -> str | None:
        """For ``edit`` and ``revoke``: the wamid of the message being changed."""
        if self.type in ("edit", "revoke"):
            return _text(self.content.get("original_message_id"), WAMID_MAX)
        return None

    @property
    def reaction_wamid(self) -> str | None:
        return _text(self.content.get("message_id"), WAMID_MAX) if self.type == "reaction" else None

    @property
    def reply_id(self) -> str | None:
        """The id (or payload) of the button or list row the customer chose."""
        if self.type == "button":
            return _text(self.content.get("payload"))
        if self.type == "interactive":
            choice = _choice(self.content)
            return _text(choice.get("id"))
        return None


@dataclass(frozen=True)
class StatusUpdate:
    """Delivery news about a message the business sent (``value.statuses[i]``)."""

    kind: ClassVar[str] = "status"

    phone_number_id: str
    display_phone_number: str
    waba_id: str
    wamid: str
    status: str
    timestamp: datetime
    recipient_id: str
    recipient_user_id: str = ""
    conversation: dict[str, Any] | None = None
    pricing: dict[str, Any] | None = None
    biz_opaque_callback_data: str = ""
    errors: tuple[EventError, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def error(self) -> EventError | None:
        return self.errors[0] if self.errors else None


@dataclass(frozen=True)
class TemplateStatusUpdate:
    """``message_template_status_update``: a template was approved, rejected, paused..."""

    kind: ClassVar[str] = "template_status"

    waba_id: str
    template_id: str
    template_name: str
    language: str
    event: str
    reason: str
    category: str
    timestamp: datetime | None
    rejection_info: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class TemplateQualityUpdate:
    """``message_template_quality_update``: GREEN, YELLOW or RED."""

    kind: ClassVar[str] = "template_quality"

    waba_id: str
    template_id: str
    template_name: str
    language: str
    previous_quality_score: str
    new_quality_score: str
    timestamp: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PhoneNumberQualityUpdate:
    """``phone_number_quality_update``: FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, THROUGHPUT_..."""

    kind: ClassVar[str] = "phone_quality"

    waba_id: str
    display_phone_number: str
    event: str
    current_limit: str
    timestamp: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class AccountEvent:
    """Any other change ``field`` (account_update, template_category_update...), kept raw."""

    kind: ClassVar[str] = "account"

    waba_id: str
    field: str
    event: str
    timestamp: datetime | None
    value: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValueErrors:
    """Errors reported for the whole change (``value.errors``): system, app or account level."""

    kind: ClassVar[str] = "errors"

    phone_number_id: str
    display_phone_number: str
    waba_id: str
    errors: tuple[EventError, ...]


@dataclass(frozen=True)
class RejectedItem:
    """One item of a delivery that could not be read (a message, a status, a change, an entry):
    where it sits and why. ``parse_webhook_items`` returns it in the item's place, so that one
    bad message is recorded with its reason while the others of its delivery go through."""

    kind: ClassVar[str] = "rejected"

    where: str
    reason: str
    wamid: str = ""
    raw: Any = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        return f"{self.reason} (wamid {self.wamid})" if self.wamid else self.reason


Event = (
    InboundMessage
    | StatusUpdate
    | TemplateStatusUpdate
    | TemplateQualityUpdate
    | PhoneNumberQualityUpdate
    | AccountEvent
    | ValueErrors
)


# --- Parsing ------------------------------------------------------------------------------------


class _NotJSON(ValueError):
    """NaN, Infinity or a number too large for a float: Python's json reads them, but they are
    not JSON, and PostgreSQL's JSON columns refuse them."""


def _refuse_constant(name: str) -> float:
    raise _NotJSON(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotJSON(f"{text[:40]} is too large for a number")
    return number


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def load_webhook(raw: bytes) -> Any:
    """The JSON body of a delivery, or ``PayloadError`` saying why it is not one (not JSON,
    NaN/Infinity, nested too deeply for the decoder)."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return _DECODER.decode(text)
    except RecursionError as exc:
        raise PayloadError("body is not valid JSON: nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc


def parse_webhook_bytes(raw: bytes) -> list[Event]:
    """Decode a raw webhook body and parse it; invalid JSON raises ``PayloadError``."""
    return parse_webhook(load_webhook(raw))


def parse_webhook(body: Any) -> list[Event]:
    """Every event in a webhook body, in order; the first item we cannot read raises
    ``PayloadError`` with its reason."""
    events = []
    for item in parse_webhook_items(body):
        if isinstance(item, RejectedItem):
            raise PayloadError(item.reason)
        events.append(item)
    return events


def parse_webhook_items(body: Any) -> list[Event | RejectedItem]:
    """Every event in a webhook body, in order, with a ``RejectedItem`` in the place of each
    entry, change, message or status that cannot be read. ``PayloadError`` only when the body
    as a whole is unreadable (not an object, not ``whatsapp_business_account``, no entry
    list)."""
    body = _obj(body, "body")
    if body.get("object") != "whatsapp_business_account":
        raise PayloadError(
            f"body.object is {_short(body.get('object'))}, not 'whatsapp_business_account'"
        )
    events: list[Event | RejectedItem] = []
    for entry_index, entry in enumerate(_list(body.get("entry"), "body.entry")):
        where = f"entry[{entry_index}]"
        try:
            entry = _obj(entry, where)
            waba_id = _str(entry.get("id"), f"{where}.id", required=False)
            entry_time = _datetime(entry["time"], f"{where}.time") if "time" in entry else None
            changes = _list(entry.get("changes"), f"{where}.changes")
        except PayloadError as error:
            events.append(RejectedItem(where=where, reason=str(error), raw=entry))
            continue
        for change_index, change in enumerate(changes):
            change_where = f"{where}.changes[{change_index}]"
            try:
                change = _obj(change, change_where)
                field_name = _str(change.get("field"), f"{change_where}.field")
                value = _obj(change.get("value"), f"{change_where}.value")
                events.extend(
                    _parse_change(field_name, value, waba_id, entry_time, f"{change_where}.value")
                )
            except PayloadError as error:
                events.append(RejectedItem(where=change_where, reason=str(error), raw=change))
    return events


def _parse_change(
    field_name: str, value: dict, waba_id: str, entry_time: datetime | None, where: str
) -> list[Event | RejectedItem]:
    if field_name == "messages":
        return _parse_messages_value(value, waba_id, where)
    if field_name == "message_template_status_update":
        return [
            TemplateStatusUpdate(
                waba_id=waba_id,
                template_id=_str(value.get("message_template_id"), f"{where}.message_template_id"),
                template_name=_str(value.get("message_template_name"), f"{where}.name", False),
                language=_str(value.get("message_template_language"), f"{where}.language", False),
                event=_str(value.get("event"), f"{where}.event", limit=TEMPLATE_STATUS_MAX),
                reason=_str(value.get("reason"), f"{where}.reason", False, TEMPLATE_REASON_MAX),
                category=_str(value.get("message_template_category"), f"{where}.category", False),
                timestamp=entry_time,
                rejection_info=_clean(
                    _opt_obj(value.get("rejection_info"), f"{where}.rejection_info"),
                    f"{where}.rejection_info",
                ),
                raw=value,
            )
        ]
    if field_name == "message_template_quality_update":
        return [
            TemplateQualityUpdate(
                waba_id=waba_id,
                template_id=_str(value.get("message_template_id"), f"{where}.message_template_id"),
                template_name=_str(value.get("message_template_name"), f"{where}.name", False),
                language=_str(value.get("message_template_language"), f"{where}.language", False),
                previous_quality_score=_str(
                    value.get("previous_quality_score"), f"{where}.previous_quality_score", False
                ),
                new_quality_score=_str(
                    value.get("new_quality_score"), f"{where}.new_quality_score"
                ),
                timestamp=entry_time,
                raw=value,
            )
        ]
    if field_name == "phone_number_quality_update":
        return [
            PhoneNumberQualityUpdate(
                waba_id=waba_id,
                display_phone_number=_str(
                    value.get("display_phone_number"), f"{where}.display_phone_number", False
                ),
                event=_str(value.get("event"), f"{where}.event", limit=QUALITY_RATING_MAX),
                current_limit=_str(
                    value.get("current_limit"), f"{where}.current_limit", False, MESSAGING_LIMIT_MAX
                ),
                timestamp=entry_time,
                raw=value,
            )
        ]
    return [
        AccountEvent(
            waba_id=waba_id,
            field=field_name,
            event=_str(value.get("event"), f"{where}.event", False),
            timestamp=entry_time,
            value=_clean(value, where),
        )
    ]


def _parse_messages_value(value: dict, waba_id: str, where: str) -> list[Event | RejectedItem]:
    metadata = _obj(value.get("metadata"), f"{where}.metadata")
    phone_number_id = _str(metadata.get("phone_number_id"), f"{where}.metadata.phone_number_id")
    display = _str(metadata.get("display_phone_number"), f"{where}.metadata.display", False)
    has_any = any(key in value for key in ("messages", "statuses", "errors"))
    if not has_any:
        raise PayloadError(f"{where} has none of messages, statuses or errors")

    value_errors = _errors(value.get("errors"), f"{where}.errors")
    contacts = _contacts_by_wa_id(value.get("contacts"), f"{where}.contacts")
    messages = _list(value.get("messages", []), f"{where}.messages")
    statuses = _list(value.get("statuses", []), f"{where}.statuses")
    events: list[Event | RejectedItem] = []
    for index, message in enumerate(messages):
        item_where = f"{where}.messages[{index}]"
        try:
            events.append(
                _parse_message(
                    _obj(message, item_where),
                    item_where,
                    phone_number_id=phone_number_id,
                    display_phone_number=display,
                    waba_id=waba_id,
                    contacts=contacts,
                    value_errors=value_errors,
                )
            )
        except PayloadError as error:
            events.append(_rejected(item_where, error, message))
    for index, status in enumerate(statuses):
        item_where = f"{where}.statuses[{index}]"
        try:
            events.append(
                _parse_status(
                    _obj(status, item_where),
                    item_where,
                    phone_number_id=phone_number_id,
                    display_phone_number=display,
                    waba_id=waba_id,
                )
            )
        except PayloadError as error:
            events.append(_rejected(item_where, error, status))
    if value_errors:
        events.append(
            ValueErrors(
                phone_number_id=phone_number_id,
                display_phone_number=display,
                waba_id=waba_id,
                errors=value_errors,
            )
        )
    return events


def _rejected(where: str, error: PayloadError, item: Any) -> RejectedItem:
    wamid = _text(item.get("id"), WAMID_MAX) if isinstance(item, dict) else None
    return RejectedItem(where=where, reason=str(error), wamid=wamid or "", raw=item)


def _contacts_by_wa_id(contacts: Any, where: str) -> dict[str, dict]:
    if contacts is None:
        return {}
    found: dict[str, dict] = {}
    for index, contact in enumerate(_list(contacts, where)):
        contact = _obj(contact, f"{where}[{index}]")
        for key in ("wa_id", "user_id"):
            identifier = _text(contact.get(key), WA_ID_MAX)
            if identifier:
                found[identifier] = contact
    return found


def _only_contact(contacts: dict[str, dict]) -> dict:
    """The single contact of the change, when there is exactly one (BSUID-only senders)."""
    distinct = {id(contact): contact for contact in contacts.values()}
    return next(iter(distinct.values())) if len(distinct) == 1 else {}


def _parse_message(
    message: dict,
    where: str,
    *,
    phone_number_id: str,
    display_phone_number: str,
    waba_id: str,
    contacts: dict[str, dict],
    value_errors: tuple[EventError, ...],
) -> InboundMessage:
    message_type = _str(message.get("type"), f"{where}.type")
    wamid = _str(message.get("id"), f"{where}.id", limit=WAMID_MAX)
    timestamp = _datetime(message.get("timestamp"), f"{where}.timestamp")
    # System messages about a changed user ID may come without "from".
    wa_id = _str(
        message.get("from"), f"{where}.from", required=message_type != "system", limit=WA_ID_MAX
    )
    user_id = _str(message.get("from_user_id"), f"{where}.from_user_id", False, WA_ID_MAX)
    errors = _errors(message.get("errors"), f"{where}.errors")
    content = _message_content(
        message, message_type, where, tolerate_missing=bool(errors or value_errors)
    )
    contact = contacts.get(wa_id) or contacts.get(user_id) or _only_contact(contacts)
    profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
    return InboundMessage(
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        waba_id=waba_id,
        wa_id=wa_id,
        user_id=user_id
        or _str(contact.get("user_id"), f"{where}.contact.user_id", False, WA_ID_MAX),
        profile_name=_str(
            profile.get("name"), f"{where}.contact.profile.name", False, PROFILE_NAME_MAX
        ),
        wamid=wamid,
        timestamp=timestamp,
        type=message_type,
        content=content,
        context=_clean(_opt_obj(message.get("context"), f"{where}.context"), f"{where}.context"),
        referral=_clean(
            _opt_obj(message.get("referral"), f"{where}.referral"), f"{where}.referral"
        ),
        errors=errors,
        raw=message,
    )


def _message_content(
    message: dict, message_type: str, where: str, *, tolerate_missing: bool
) -> dict[str, Any]:
    body = message.get(message_type)
    if message_type == "contacts":
        if body is None and tolerate_missing:
            return {"contacts": []}
        cards = _list(body, f"{where}.contacts")
        for index, card in enumerate(cards):
            _obj(card, f"{where}.contacts[{index}]")
        return {"contacts": _clean(cards, f"{where}.contacts")}
    if message_type == "unsupported":
        return _clean(_opt_obj(body, f"{where}.unsupported"), f"{where}.unsupported") or {}
    if body is None:
        if tolerate_missing:
            return {}
        kind = _short(message_type)
        raise PayloadError(f"{where} has type {kind} but no {kind} object")
    content = dict(_obj(body, f"{where}.{message_type}"))
    if message_type == "system":
        if isinstance(message.get("identity"), dict):
            content["identity"] = message["identity"]
        if "wa_id" in content:  # a changed number: the id the inbox files the message under
            content["wa_id"] = _str(content["wa_id"], f"{where}.system.wa_id", False, WA_ID_MAX)
    if message_type == "interactive":
        _str(content.get("type"), f"{where}.interactive.type")
    if message_type == "edit":
        inner = _obj(content.get("message"), f"{where}.edit.message")
        inner_type = _str(inner.get("type"), f"{where}.edit.message.type")
        _opt_obj(inner.get(inner_type), f"{where}.edit.message.{_short(inner_type)}")
        _opt_obj(inner.get("text"), f"{where}.edit.message.text")  # the new text, if any
        _str(content.get("original_message_id"), f"{where}.edit.original_message_id")
    if message_type == "revoke":
        _str(content.get("original_message_id"), f"{where}.revoke.original_message_id")
    return _clean(content, f"{where}.{message_type}")


def _message_text(message_type: str, content: dict[str, Any]) -> str:
    if message_type == "text":
        return _text(content.get("body")) or ""
    if message_type in MEDIA_TYPES:
        return _text(content.get("caption")) or ""
    if message_type == "interactive":
        choice = _choice(content)
        return _text(choice.get("title")) or _text(choice.get("body")) or ""
    if message_type == "button":
        return _text(content.get("text")) or _text(content.get("payload")) or ""
    if message_type == "location":
        return ", ".join(filter(None, (_text(content.get(k)) for k in ("name", "address"))))
    if message_type == "reaction":
        return _text(content.get("emoji")) or ""
    if message_type in ("system", "order"):
        return _text(content.get("body")) or _text(content.get("text")) or ""
    if message_type == "contacts":
        cards = content.get("contacts")
        names = [
            _text(card["name"].get("formatted_name"))
            for card in (cards if isinstance(cards, list) else [])
            if isinstance(card, dict) and isinstance(card.get("name"), dict)
        ]
        return ", ".join(n for n in names if n)
    if message_type == "edit":
        inner = content.get("message")
        inner_type = inner.get("type") if isinstance(inner, dict) else None
        if isinstance(inner_type, str) and inner_type != "edit":
            inner_content = inner.get(inner_type)
            return _message_text(
                inner_type, inner_content if isinstance(inner_content, dict) else {}
            )
    return ""


def _choice(content: dict[str, Any]) -> dict[str, Any]:
    """The button or list row an ``interactive`` reply carries (``{}`` when it has none)."""
    choice_type = content.get("type")
    choice = content.get(choice_type) if isinstance(choice_type, str) else None
    return choice if isinstance(choice, dict) else {}


def _parse_status(
    status: dict, where: str, *, phone_number_id: str, display_phone_number: str, waba_id: str
) -> StatusUpdate:
    value = _str(status.get("status"), f"{where}.status", limit=STATUS_MAX)
    return StatusUpdate(
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        waba_id=waba_id,
        wamid=_str(status.get("id"), f"{where}.id", limit=WAMID_MAX),
        status=value,
        timestamp=_datetime(status.get("timestamp"), f"{where}.timestamp"),
        recipient_id=_str(status.get("recipient_id"), f"{where}.recipient_id", False, WA_ID_MAX),
        recipient_user_id=_str(
            status.get("recipient_user_id"), f"{where}.recipient_user_id", False, WA_ID_MAX
        ),
        conversation=_clean(
            _opt_obj(status.get("conversation"), f"{where}.conversation"), f"{where}.conversation"
        ),
        pricing=_clean(_opt_obj(status.get("pricing"), f"{where}.pricing"), f"{where}.pricing"),
        biz_opaque_callback_data=_str(
            status.get("biz_opaque_callback_data"), f"{where}.biz_opaque_callback_data", False
        ),
        errors=_errors(status.get("errors"), f"{where}.errors"),
        raw=status,
    )


def _errors(value: Any, where: str) -> tuple[EventError, ...]:
    if value is None:
        return ()
    errors = []
    for index, item in enumerate(_list(value, where)):
        item = _obj(item, f"{where}[{index}]")
        code = item.get("code")
        if isinstance(code, str):
            code = _int(code)
            if code is None:
                raise PayloadError(
                    f"{where}[{index}].code is not an integer: {_short(item['code'])}"
                )
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            raise PayloadError(f"{where}[{index}].code is not an integer: {_short(code)}")
        error_data = item.get("error_data") if isinstance(item.get("error_data"), dict) else {}
        title = _text(item.get("title")) or ""
        errors.append(
            EventError(
                code=code if code is not None and -INT_MAX <= code <= INT_MAX else None,
                title=title[:ERROR_TITLE_MAX],
                message=_text(item.get("message")) or title,
                details=_text(error_data.get("details")) or "",
                href=_text(item.get("href")) or "",
            )
        )
    return tuple(errors)


def _obj(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object, got {_kind(value)}")
    return value


def _opt_obj(value: Any, where: str) -> dict | None:
    return None if value is None else _obj(value, where)


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise PayloadError(f"{where} must be a list, got {_kind(value)}")
    return value


def _str(value: Any, where: str, required: bool = True, limit: int | None = None) -> str:
    """A string field (Meta sends some ids as numbers), clamped to ``limit`` characters."""
    if value is None or value == "":
        if required:
            raise PayloadError(f"{where} is missing")
        return ""
    text = _text(value, limit)
    if text is None:
        raise PayloadError(f"{where} must be a string, got {_kind(value)}")
    return text


def _text(value: Any, limit: int | None = None) -> str | None:
    """``value`` as a storable string when it is a string or an integer (clamped to ``limit``),
    or None (also for ""): how every field the parser hands on is read."""
    if isinstance(value, str):
        text = _clean_str(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            text = str(value)
        except ValueError:  # more digits than Python converts: not an id of ours
            return None
    else:
        return None
    return (text[:limit] if limit is not None else text) or None


def _int(text: str) -> int | None:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return None


def _datetime(value: Any, where: str) -> datetime:
    """Unix seconds (a string in ``messages``, an int in ``entry.time``) as an aware UTC datetime."""
    if isinstance(value, str) and _int(value) is not None:
        value = _int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{where} must be Unix seconds, got {_short(value)}")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"{where} is out of range: {_short(value)}") from exc


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _clean_str(text: str) -> str:
    """``text`` with NUL and lone surrogates, which PostgreSQL refuses, replaced by U+FFFD.
    Valid surrogate pairs were joined by the JSON decoder, so any surrogate left is a lone one."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub("\ufffd", text)


def _clean(node: Any, where: str, depth: int = 0) -> Any:
    """``node`` with every string (keys too) storable (see ``_clean_str``); ``PayloadError`` when
    it nests deeper than ``MAX_DEPTH``."""
    if isinstance(node, str):
        return _clean_str(node)
    if isinstance(node, dict | list):
        if depth >= MAX_DEPTH:
            raise PayloadError(f"{where} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, list):
            return [_clean(value, where, depth + 1) for value in node]
        return {
            _clean_str(key) if isinstance(key, str) else key: _clean(value, where, depth + 1)
            for key, value in node.items()
        }
    return node


def _short(value: Any) -> str:
    """``repr(value)`` short enough for an error message (a container is only named: its repr
    could be huge, or recurse too deeply)."""
    if isinstance(value, dict | list | tuple):
        return f"a {type(value).__name__}"
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python converts
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- Building (the sandbox's shapes) ------------------------------------------------------------


def encode_webhook(body: Mapping[str, Any]) -> bytes:
    """Bytes to POST and sign: ASCII-only JSON, so raw-byte and escaped-unicode checks agree."""
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def unix_now() -> str:
    return str(int(time.time()))


def build_webhook(waba_id: str, changes: Sequence[dict], *, entry_time: int | None = None) -> dict:
    """The envelope: ``{"object": "whatsapp_business_account", "entry": [...]}``.

    ``entry_time`` (Unix seconds) is set on template and account changes, not on messages.
    """
    entry: dict[str, Any] = {"id": waba_id}
    if entry_time is not None:
        entry["time"] = entry_time
    entry["changes"] = list(changes)
    return {"object": "whatsapp_business_account", "entry": [entry]}


def build_messages_change(
    *,
    phone_number_id: str,
    display_phone_number: str,
    contacts: Iterable[dict] = (),
    messages: Iterable[dict] = (),
    statuses: Iterable[dict] = (),
    errors: Iterable[dict] = (),
) -> dict:
    """A ``field: "messages"`` change; empty arrays are left out, as Meta does."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    for key, items in (
        ("contacts", contacts),
        ("messages", messages),
        ("statuses", statuses),
        ("errors", errors),
    ):
        items = list(items)
        if items:
            value[key] = items
    return {"value": value, "field": "messages"}


def build_contact(*, wa_id: str, profile_name: str, user_id: str = "") -> dict:
    contact: dict[str, Any] = {"profile": {"name": profile_name}, "wa_id": wa_id}
    if user_id:
        contact["user_id"] = user_id
    return contact


def build_inbound_message(
    *,
    wamid: str,
    from_wa_id: str | None,
    message_type: str,
    content: Any,
    timestamp: str | None = None,
    context: dict | None = None,
    referral: dict | None = None,
    errors: Sequence[dict] | None = None,
    from_user_id: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """One ``value.messages[i]``. ``content`` goes under the key named like the type (a list for
    ``contacts``); ``extra`` adds siblings such as ``identity`` for system messages."""
    message: dict[str, Any] = {}
    if context:
        message["context"] = context
    if referral:
        message["referral"] = referral
    if from_wa_id:
        message["from"] = from_wa_id
    if from_user_id:
        message["from_user_id"] = from_user_id
    message["id"] = wamid
    message["timestamp"] = timestamp or unix_now()
    message["type"] = message_type
    if content is not None:
        message[message_type] = content
    if errors:
        message["errors"] = list(errors)
    message.update(extra or {})
    return message


def build_text(body: str) -> dict:
    return {"body": body}


def build_media(
    *,
    media_id: str,
    mime_type: str,
    sha256: str,
    caption: str = "",
    filename: str = "",
    voice: bool | None = None,
    animated: bool | None = None,
) -> dict:
    """Inbound image/video/audio/document/sticker body; ``sha256`` is base64 in webhooks."""
    media: dict[str, Any] = {}
    if caption:
        media["caption"] = caption
    if filename:
        media["filename"] = filename
    media.update({"mime_type": mime_type, "sha256": sha256, "id": media_id})
    if voice is not None:
        media["voice"] = voice
    if animated is not None:
        media["animated"] = animated
    return media


def build_location(
    *, latitude: float, longitude: float, name: str = "", address: str = "", url: str = ""
) -> dict:
    location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    for key, value in (("name", name), ("address", address), ("url", url)):
        if value:
            location[key] = value
    return location


def build_contact_card(*, formatted_name: str, phone: str = "", wa_id: str = "") -> dict:
    """One card of a ``contacts`` message (name plus an optional phone)."""
    first, _, last = formatted_name.partition(" ")
    name: dict[str, Any] = {"first_name": first, "formatted_name": formatted_name}
    if last:
        name["last_name"] = last
    card: dict[str, Any] = {"name": name}
    if phone:
        entry = {"phone": phone, "type": "CELL"}
        if wa_id:
            entry["wa_id"] = wa_id
        card["phones"] = [entry]
    return card


def build_button_reply(*, reply_id: str, title: str) -> dict:
    return {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}}


def build_list_reply(*, reply_id: str, title: str, description: str = "") -> dict:
    reply = {"id": reply_id, "title": title}
    if description:
        reply["description"] = description
    return {"type": "list_reply", "list_reply": reply}


def build_flow_reply(
    *, response: Mapping[str, Any], body: str = "Sent", name: str = "flow"
) -> dict:
    """A Flow completion (``nfm_reply``); ``response_json`` is a JSON *string*, as Meta sends."""
    return {
        "type": "nfm_reply",
        "nfm_reply": {"name": name, "body": body, "response_json": json.dumps(dict(response))},
    }


def build_template_button(*, payload: str, text: str) -> dict:
    """A tap on a template's quick-reply button (message type ``button``)."""
    return {"payload": payload, "text": text}


def build_reaction(*, message_id: str, emoji: str) -> dict:
    return {"message_id": message_id, "emoji": emoji}


def build_order(*, catalog_id: str, product_items: Sequence[dict], text: str = "") -> dict:
    return {"catalog_id": catalog_id, "text": text, "product_items": list(product_items)}


def build_system(*, system_type: str, body: str, **fields: str) -> dict:
    """A system message body, e.g. ``type="user_changed_number"`` with ``wa_id=<new number>``."""
    return {"body": body, **fields, "type": system_type}


def build_edit(*, original_message_id: str, message_type: str, content: dict) -> dict:
    return {
        "original_message_id": original_message_id,
        "message": {"type": message_type, message_type: content},
    }


def build_revoke(*, original_message_id: str) -> dict:
    return {"original_message_id": original_message_id}


def build_event_error(code: int, *, details: str = "", title: str = "") -> dict:
    """An ``errors[i]`` entry of a status, message or change value."""
    spec = spec_for(code)
    title = title or (spec.title if spec else "Error")
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details or (spec.details if spec else title)},
        "href": HREF,
    }


def build_pricing(*, category: str, pricing_type: str, billable: bool) -> dict:
    """Per-message pricing (PMP) as sent since July 2025."""
    return {
        "billable": billable,
        "pricing_model": "PMP",
        "type": pricing_type,
        "category": category,
    }


def build_status(
    *,
    wamid: str,
    status: str,
    recipient_id: str,
    timestamp: str | None = None,
    conversation: dict | None = None,
    pricing: dict | None = None,
    errors: Sequence[dict] | None = None,
    biz_opaque_callback_data: str = "",
    recipient_user_id: str = "",
) -> dict:
    """One ``value.statuses[i]``; ``failed`` statuses carry ``errors`` and no pricing."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": timestamp or unix_now(),
        "recipient_id": recipient_id,
    }
    if recipient_user_id:
        item["recipient_user_id"] = recipient_user_id
    if biz_opaque_callback_data:
        item["biz_opaque_callback_data"] = biz_opaque_callback_data
    if conversation:
        item["conversation"] = conversation
    if pricing:
        item["pricing"] = pricing
    if errors:
        item["errors"] = list(errors)
    return item


def build_template_status_change(
    *,
    template_id: str,
    name: str,
    language: str,
    event: str,
    category: str = "",
    reason: str = "NONE",
    rejection_info: dict | None = None,
) -> dict:
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": int(template_id) if template_id.isdigit() else template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
    }
    if category:
        value["message_template_category"] = category
    if rejection_info:
        value["rejection_info"] = rejection_info
    return {"value": value, "field": "message_template_status_update"}


def build_template_quality_change(
    *, template_id: str, name: str, language: str, previous: str, new: str
) -> dict:
    return {
        "value": {
            "previous_quality_score": previous,
            "new_quality_score": new,
            "message_template_id": int(template_id) if template_id.isdigit() else template_id,
            "message_template_name": name,
            "message_template_language": language,
        },
        "field": "message_template_quality_update",
    }


def build_phone_quality_change(
    *, display_phone_number: str, event: str, current_limit: str
) -> dict:
    return {
        "value": {
            "display_phone_number": display_phone_number,
            "event": event,
            "current_limit": current_limit,
        },
        "field": "phone_number_quality_update",
    }
