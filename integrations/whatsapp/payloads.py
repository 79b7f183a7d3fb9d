"""Webhook payloads: parse Meta's bodies into events, and build Meta-shaped bodies.

``parse_webhook`` walks every level (``entry[] -> changes[] -> value.messages[] | statuses[] |
errors[]``; Meta batches) and returns frozen dataclasses. A body whose shape we do not recognise
raises ``PayloadError`` with the reason, never ``KeyError`` or ``TypeError``; store the body and
the reason for inspection.

The ``build_*`` functions produce the same shapes; the sandbox emits only what they build, so the
parser and the emulator share one definition.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from .errors import HREF, WhatsAppError, error_for_code, spec_for

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})


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

    @property
    def _media(self) -> dict[str, Any]:
        if self.type in MEDIA_TYPES:
            return self.content
        if self.type == "edit":
            inner = self.content.get("message") or {}
            if inner.get("type") in MEDIA_TYPES:
                return inner.get(inner["type"]) or {}
        return {}

    @property
    def media_id(self) -> str | None:
        value = self._media.get("id")
        return str(value) if value not in (None, "") else None

    @property
    def mime_type(self) -> str | None:
        return self._media.get("mime_type") or None

    @property
    def sha256(self) -> str | None:
        """The media hash as the webhook gives it (base64-looking; ``GET /{media-id}`` is hex)."""
        return self._media.get("sha256") or None

    @property
    def filename(self) -> str | None:
        return self._media.get("filename") or None

    @property
    def caption(self) -> str | None:
        return self._media.get("caption") or None

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
        return (self.context or {}).get("id") or None

    @property
    def is_forwarded(self) -> bool:
        context = self.context or {}
        return bool(context.get("forwarded") or context.get("frequently_forwarded"))

    @property
    def original_wamid(self) -> str | None:
        """For ``edit`` and ``revoke``: the wamid of the message being changed."""
        if self.type in ("edit", "revoke"):
            return self.content.get("original_message_id") or None
        return None

    @property
    def reaction_wamid(self) -> str | None:
        return self.content.get("message_id") if self.type == "reaction" else None

    @property
    def reply_id(self) -> str | None:
        """The id (or payload) of the button or list row the customer chose."""
        if self.type == "button":
            return self.content.get("payload")
        if self.type == "interactive":
            choice = self.content.get(self.content.get("type", "")) or {}
            return choice.get("id") if isinstance(choice, dict) else None
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


def parse_webhook_bytes(raw: bytes) -> list[Event]:
    """Decode a raw webhook body and parse it; invalid JSON raises ``PayloadError``."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    return parse_webhook(body)


def parse_webhook(body: Any) -> list[Event]:
    """Every event in a webhook body, in order."""
    body = _obj(body, "body")
    if body.get("object") != "whatsapp_business_account":
        raise PayloadError(
            f"body.object is {body.get('object')!r}, not 'whatsapp_business_account'"
        )
    events: list[Event] = []
    for entry_index, entry in enumerate(_list(body.get("entry"), "body.entry")):
        where = f"entry[{entry_index}]"
        entry = _obj(entry, where)
        waba_id = _str(entry.get("id"), f"{where}.id", required=False)
        entry_time = _datetime(entry["time"], f"{where}.time") if "time" in entry else None
        for change_index, change in enumerate(_list(entry.get("changes"), f"{where}.changes")):
            change_where = f"{where}.changes[{change_index}]"
            change = _obj(change, change_where)
            field_name = _str(change.get("field"), f"{change_where}.field")
            value = _obj(change.get("value"), f"{change_where}.value")
            events.extend(
                _parse_change(field_name, value, waba_id, entry_time, f"{change_where}.value")
            )
    return events


def _parse_change(
    field_name: str, value: dict, waba_id: str, entry_time: datetime | None, where: str
) -> list[Event]:
    if field_name == "messages":
        return _parse_messages_value(value, waba_id, where)
    if field_name == "message_template_status_update":
        return [
            TemplateStatusUpdate(
                waba_id=waba_id,
                template_id=_str(value.get("message_template_id"), f"{where}.message_template_id"),
                template_name=_str(value.get("message_template_name"), f"{where}.name", False),
                language=_str(value.get("message_template_language"), f"{where}.language", False),
                event=_str(value.get("event"), f"{where}.event"),
                reason=_str(value.get("reason"), f"{where}.reason", False),
                category=_str(value.get("message_template_category"), f"{where}.category", False),
                timestamp=entry_time,
                rejection_info=_opt_obj(value.get("rejection_info"), f"{where}.rejection_info"),
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
                event=_str(value.get("event"), f"{where}.event"),
                current_limit=_str(value.get("current_limit"), f"{where}.current_limit", False),
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
            value=value,
        )
    ]


def _parse_messages_value(value: dict, waba_id: str, where: str) -> list[Event]:
    metadata = _obj(value.get("metadata"), f"{where}.metadata")
    phone_number_id = _str(metadata.get("phone_number_id"), f"{where}.metadata.phone_number_id")
    display = _str(metadata.get("display_phone_number"), f"{where}.metadata.display", False)
    has_any = any(key in value for key in ("messages", "statuses", "errors"))
    if not has_any:
        raise PayloadError(f"{where} has none of messages, statuses or errors")

    value_errors = _errors(value.get("errors"), f"{where}.errors")
    contacts = _contacts_by_wa_id(value.get("contacts"), f"{where}.contacts")
    events: list[Event] = []
    for index, message in enumerate(_list(value.get("messages", []), f"{where}.messages")):
        events.append(
            _parse_message(
                _obj(message, f"{where}.messages[{index}]"),
                f"{where}.messages[{index}]",
                phone_number_id=phone_number_id,
                display_phone_number=display,
                waba_id=waba_id,
                contacts=contacts,
                value_errors=value_errors,
            )
        )
    for index, status in enumerate(_list(value.get("statuses", []), f"{where}.statuses")):
        events.append(
            _parse_status(
                _obj(status, f"{where}.statuses[{index}]"),
                f"{where}.statuses[{index}]",
                phone_number_id=phone_number_id,
                display_phone_number=display,
                waba_id=waba_id,
            )
        )
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


def _contacts_by_wa_id(contacts: Any, where: str) -> dict[str, dict]:
    if contacts is None:
        return {}
    found: dict[str, dict] = {}
    for index, contact in enumerate(_list(contacts, where)):
        contact = _obj(contact, f"{where}[{index}]")
        for key in ("wa_id", "user_id"):
            if contact.get(key):
                found[str(contact[key])] = contact
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
    wamid = _str(message.get("id"), f"{where}.id")
    timestamp = _datetime(message.get("timestamp"), f"{where}.timestamp")
    # System messages about a changed user ID may come without "from".
    wa_id = _str(message.get("from"), f"{where}.from", required=message_type != "system")
    user_id = _str(message.get("from_user_id"), f"{where}.from_user_id", False)
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
        user_id=user_id or _str(contact.get("user_id"), f"{where}.contact.user_id", False),
        profile_name=_str(profile.get("name"), f"{where}.contact.profile.name", False),
        wamid=wamid,
        timestamp=timestamp,
        type=message_type,
        content=content,
        context=_opt_obj(message.get("context"), f"{where}.context"),
        referral=_opt_obj(message.get("referral"), f"{where}.referral"),
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
        return {"contacts": cards}
    if message_type == "unsupported":
        return _opt_obj(body, f"{where}.unsupported") or {}
    if body is None:
        if tolerate_missing:
            return {}
        raise PayloadError(f"{where} has type {message_type!r} but no {message_type!r} object")
    content = dict(_obj(body, f"{where}.{message_type}"))
    if message_type == "system" and isinstance(message.get("identity"), dict):
        content["identity"] = message["identity"]
    if message_type == "interactive":
        _str(content.get("type"), f"{where}.interactive.type")
    if message_type == "edit":
        inner = _obj(content.get("message"), f"{where}.edit.message")
        _str(inner.get("type"), f"{where}.edit.message.type")
        _str(content.get("original_message_id"), f"{where}.edit.original_message_id")
    if message_type == "revoke":
        _str(content.get("original_message_id"), f"{where}.revoke.original_message_id")
    return content


def _message_text(message_type: str, content: dict[str, Any]) -> str:
    if message_type == "text":
        return str(content.get("body") or "")
    if message_type in MEDIA_TYPES:
        return str(content.get("caption") or "")
    if message_type == "interactive":
        choice = content.get(content.get("type", "")) or {}
        if isinstance(choice, dict):
            return str(choice.get("title") or choice.get("body") or "")
        return ""
    if message_type == "button":
        return str(content.get("text") or content.get("payload") or "")
    if message_type == "location":
        return ", ".join(str(content[k]) for k in ("name", "address") if content.get(k))
    if message_type == "reaction":
        return str(content.get("emoji") or "")
    if message_type in ("system", "order"):
        return str(content.get("body") or content.get("text") or "")
    if message_type == "contacts":
        names = [
            str((card.get("name") or {}).get("formatted_name") or "")
            for card in content.get("contacts", [])
            if isinstance(card, dict)
        ]
        return ", ".join(n for n in names if n)
    if message_type == "edit":
        inner = content.get("message") or {}
        inner_type = inner.get("type", "")
        return _message_text(inner_type, inner.get(inner_type) or {})
    return ""


def _parse_status(
    status: dict, where: str, *, phone_number_id: str, display_phone_number: str, waba_id: str
) -> StatusUpdate:
    value = _str(status.get("status"), f"{where}.status")
    return StatusUpdate(
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        waba_id=waba_id,
        wamid=_str(status.get("id"), f"{where}.id"),
        status=value,
        timestamp=_datetime(status.get("timestamp"), f"{where}.timestamp"),
        recipient_id=_str(status.get("recipient_id"), f"{where}.recipient_id", False),
        recipient_user_id=_str(
            status.get("recipient_user_id"), f"{where}.recipient_user_id", False
        ),
        conversation=_opt_obj(status.get("conversation"), f"{where}.conversation"),
        pricing=_opt_obj(status.get("pricing"), f"{where}.pricing"),
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
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            raise PayloadError(f"{where}[{index}].code is not an integer: {code!r}")
        error_data = item.get("error_data") if isinstance(item.get("error_data"), dict) else {}
        errors.append(
            EventError(
                code=code,
                title=str(item.get("title") or ""),
                message=str(item.get("message") or item.get("title") or ""),
                details=str(error_data.get("details") or ""),
                href=str(item.get("href") or ""),
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


def _str(value: Any, where: str, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise PayloadError(f"{where} is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"{where} must be a string, got {_kind(value)}")
    return str(value)


def _datetime(value: Any, where: str) -> datetime:
    """Unix seconds (a string in ``messages``, an int in ``entry.time``) as an aware UTC datetime."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{where} must be Unix seconds, got {value!r}")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"{where} is out of range: {value!r}") from exc


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
