"""Simulated customers: turn a control-API spec into a Meta-shaped inbound message.

A spec is ``{"from", "profile_name", "type", ...}`` plus the type's fields (``text``;
``caption``/``data_base64``/``mime_type``/``filename`` for media; ``latitude``/``longitude``;
``contacts``; ``reply_id``/``title`` for button and list replies; ``payload`` for template
buttons; ``message_id``/``emoji``; ``product_items``; ``system_type``; ``original_message_id``
for edits and revokes) and optional ``context_id``, ``forwarded``, ``referral``, ``user_id``.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from typing import Any

from .. import payloads as wa
from ..validation import is_bsuid, normalize_phone
from .samples import sample_media
from .state import ControlError, Media, NumberState

StoreMedia = Callable[[str, bytes, str, str], Media]

INBOUND_TYPES = (
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "button_reply",
    "list_reply",
    "nfm_reply",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "edit",
    "revoke",
    "unsupported",
)


def new_wamid(user: str) -> str:
    """A wamid shaped like Meta's (base64 of a small binary record holding the user)."""
    user_bytes = user.encode()[:40]
    raw = (
        b"\x1c\x18"
        + bytes([len(user_bytes)])
        + user_bytes
        + b"\x15\x02\x00\x11\x18\x12"
        + secrets.token_hex(9).upper().encode()
        + b"\x00"
    )
    return "wamid." + base64.b64encode(raw).decode()


def build_inbound(
    number: NumberState, spec: dict[str, Any], store_media: StoreMedia
) -> tuple[dict, dict | None, str | None]:
    """(message, contact, media_id) for one customer message; records it in the number's log.

    Call with the sandbox lock held; ``store_media(owner, data, mime_type, filename)`` keeps
    the customer's file so the product can fetch it through the media endpoints.
    """
    config = number.config
    wa_id = normalize_phone(str(spec.get("from") or ""))
    if wa_id is None:
        raise ControlError("from must be the customer's phone number with country code.")
    user_id = str(spec.get("user_id") or "")
    if user_id and not is_bsuid(user_id):
        raise ControlError("user_id must be a business-scoped user ID such as US.1234567.")
    profile_name = str(spec.get("profile_name") or "Cliente Sandbox")
    message_type = str(spec.get("type") or "text")
    if message_type not in INBOUND_TYPES:
        raise ControlError(f"type must be one of: {', '.join(INBOUND_TYPES)}.")
    if message_type in ("button_reply", "list_reply", "nfm_reply"):
        spec["interactive_type"], message_type = message_type, "interactive"
    wamid = new_wamid(wa_id)
    content, extra, errors, media_id = _content(number, message_type, spec, store_media)
    context = None
    if spec.get("context_id"):
        context = {"from": config.display_phone_number, "id": str(spec["context_id"])}
    elif spec.get("frequently_forwarded"):
        context = {"frequently_forwarded": True}
    elif spec.get("forwarded"):
        context = {"forwarded": True}
    referral = spec.get("referral")
    if referral is not None and not isinstance(referral, dict):
        raise ControlError("referral must be an object (source_url, source_id, ...).")
    timestamp = spec.get("timestamp")
    message = wa.build_inbound_message(
        wamid=wamid,
        from_wa_id=wa_id,
        message_type=message_type,
        content=content,
        timestamp=str(int(timestamp)) if timestamp else None,
        context=context,
        referral=referral,
        errors=errors,
        from_user_id=user_id,
        extra=extra,
    )
    now = time.time()
    number.last_inbound[wa_id] = now
    if user_id:
        number.last_inbound[user_id] = now
    number.count_message(time.monotonic())
    number.remember(
        {
            "direction": "inbound",
            "wamid": wamid,
            "wa_id": wa_id,
            "user_id": user_id,
            "profile_name": profile_name,
            "type": message_type,
            "message": message,
            "media_id": media_id,
            "timestamp": int(message["timestamp"]),
            "read_by_business": False,
        }
    )
    contact = None
    if message_type != "system":  # system messages arrive without contacts
        contact = wa.build_contact(wa_id=wa_id, profile_name=profile_name, user_id=user_id)
    return message, contact, media_id


def _content(
    number: NumberState, message_type: str, spec: dict[str, Any], store_media: StoreMedia
) -> tuple[Any, dict | None, list[dict] | None, str | None]:
    """(content, extra sibling keys, errors, media_id) for an inbound message type."""
    if message_type == "text":
        return wa.build_text(_required_text(spec, "text", "body")), None, None, None
    if message_type in wa.MEDIA_TYPES:
        media = _media(number, message_type, spec, store_media)
        content = wa.build_media(
            media_id=media.id,
            mime_type=media.mime_type,
            sha256=base64.b64encode(bytes.fromhex(media.sha256)).decode(),
            caption=str(spec.get("caption") or "") if message_type != "sticker" else "",
            filename=media.filename if message_type == "document" else "",
            voice=bool(spec.get("voice")) if message_type == "audio" else None,
            animated=bool(spec.get("animated")) if message_type == "sticker" else None,
        )
        return content, None, None, media.id
    if message_type == "location":
        try:
            latitude, longitude = float(spec["latitude"]), float(spec["longitude"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ControlError("location needs numeric latitude and longitude.") from exc
        content = wa.build_location(
            latitude=latitude,
            longitude=longitude,
            name=str(spec.get("name") or ""),
            address=str(spec.get("address") or ""),
            url=str(spec.get("url") or ""),
        )
        return content, None, None, None
    if message_type == "contacts":
        return _contact_cards(spec.get("contacts")), None, None, None
    if message_type == "interactive":
        return _interactive_reply(spec), None, None, None
    if message_type == "button":
        payload = _required_text(spec, "payload")
        text = str(spec.get("text") or payload)
        return wa.build_template_button(payload=payload, text=text), None, None, None
    if message_type == "reaction":
        if "emoji" not in spec or not isinstance(spec["emoji"], str):
            raise ControlError('reaction needs "emoji" ("" removes the reaction).')
        content = wa.build_reaction(
            message_id=_required_text(spec, "message_id"), emoji=spec["emoji"]
        )
        return content, None, None, None
    if message_type == "order":
        items = spec.get("product_items")
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise ControlError("order needs product_items (a non-empty list of objects).")
        content = wa.build_order(
            catalog_id=str(spec.get("catalog_id") or "354160437058781"),
            product_items=items,
            text=str(spec.get("text") or ""),
        )
        return content, None, None, None
    if message_type == "system":
        return (*_system_content(spec), None, None)
    if message_type == "edit":
        return _edit(number, spec), None, None, None
    if message_type == "revoke":
        original = _required_text(spec, "original_message_id")
        return wa.build_revoke(original_message_id=original), None, None, None
    # unsupported
    kind = str(spec.get("unsupported_type") or "")
    errors = [
        wa.build_event_error(
            131051,
            title="Message type unknown",
            details="Message type is currently not supported.",
        )
    ]
    return ({"type": kind} if kind else None), None, errors, None


def _media(number: NumberState, kind: str, spec: dict[str, Any], store_media: StoreMedia) -> Media:
    data, mime_type, filename = sample_media(kind)
    if spec.get("data_base64"):
        try:
            data = base64.b64decode(str(spec["data_base64"]), validate=True)
        except ValueError as exc:
            raise ControlError("data_base64 is not valid base64.") from exc
        if not data:
            raise ControlError("data_base64 is empty.")
    mime_type = str(spec.get("mime_type") or mime_type)
    filename = str(spec.get("filename") or filename)
    return store_media(number.config.phone_number_id, data, mime_type, filename)


def _edit(number: NumberState, spec: dict[str, Any]) -> dict:
    original_id = _required_text(spec, "original_message_id")
    original = number.by_wamid.get(original_id)
    original_message = (original or {}).get("message") or {}
    original_type = original_message.get("type")
    if original_type in wa.MEDIA_TYPES and "caption" in spec:
        content = dict(original_message.get(original_type) or {})
        content["caption"] = str(spec["caption"])
        return wa.build_edit(
            original_message_id=original_id, message_type=original_type, content=content
        )
    return wa.build_edit(
        original_message_id=original_id,
        message_type="text",
        content=wa.build_text(_required_text(spec, "text", "body")),
    )


def _required_text(spec: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = spec.get(key)
        if isinstance(value, str) and value:
            return value
    raise ControlError(f"{' or '.join(keys)} is required (a non-empty string).")


def _contact_cards(value: Any) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise ControlError("contacts needs a non-empty list of contact cards.")
    cards = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("name"), dict):
            cards.append(item)  # already Meta-shaped
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            phone = str(item.get("phone") or "")
            cards.append(
                wa.build_contact_card(
                    formatted_name=item["name"], phone=phone, wa_id=normalize_phone(phone) or ""
                )
            )
        else:
            raise ControlError('Each contact is {"name": "...", "phone": "..."} or a Meta card.')
    return cards


def _interactive_reply(spec: dict[str, Any]) -> dict:
    kind = spec.get("interactive_type") or "button_reply"
    if kind == "button_reply":
        return wa.build_button_reply(
            reply_id=_required_text(spec, "reply_id", "id"), title=_required_text(spec, "title")
        )
    if kind == "list_reply":
        return wa.build_list_reply(
            reply_id=_required_text(spec, "reply_id", "id"),
            title=_required_text(spec, "title"),
            description=str(spec.get("description") or ""),
        )
    if kind == "nfm_reply":
        response = spec.get("response") or {}
        if not isinstance(response, dict):
            raise ControlError("nfm_reply response must be an object (the Flow's answers).")
        response.setdefault("flow_token", "sandbox-flow-token")
        return wa.build_flow_reply(response=response)
    raise ControlError("interactive_type must be button_reply, list_reply or nfm_reply.")


def _system_content(spec: dict[str, Any]) -> tuple[dict, dict | None]:
    system_type = str(spec.get("system_type") or "user_changed_number")
    if system_type == "user_changed_number":
        new_wa_id = normalize_phone(str(spec.get("new_wa_id") or ""))
        if new_wa_id is None:
            raise ControlError("user_changed_number needs new_wa_id (the new phone number).")
        old = normalize_phone(str(spec.get("from") or ""))
        body = f"User {spec.get('profile_name') or 'A'} changed from {old} to {new_wa_id}"
        return wa.build_system(system_type=system_type, body=body, wa_id=new_wa_id), None
    if system_type == "customer_identity_changed":
        identity = {
            "acknowledged": True,
            "created_timestamp": wa.unix_now(),
            "hash": secrets.token_hex(8),
        }
        content = wa.build_system(system_type=system_type, body="User identity changed")
        return content, {"identity": identity}
    raise ControlError("system_type must be user_changed_number or customer_identity_changed.")
