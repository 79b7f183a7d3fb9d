"""Cloud API limits and request checks, shared by the client and the sandbox.

Every check works on the Meta-shaped JSON (the body of ``POST /{phone-number-id}/messages``, a
template definition, an upload) and returns a ``Problem`` or None. The client turns a problem into
``ValidationError`` before any call; the sandbox turns it into the Graph error Meta would send
(``code`` and ``details``), so both enforce the same limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_TEXT_BODY = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 512
MAX_MESSAGE_ID = 128

MAX_INTERACTIVE_BODY = 1024
MAX_INTERACTIVE_HEADER_TEXT = 60
MAX_INTERACTIVE_FOOTER = 60
MAX_REPLY_BUTTONS = 3
MAX_REPLY_BUTTON_TITLE = 20
MAX_REPLY_BUTTON_ID = 256
MAX_LIST_BUTTON = 20
MAX_LIST_SECTIONS = 10
MAX_LIST_ROWS = 10
MAX_LIST_SECTION_TITLE = 24
MAX_LIST_ROW_ID = 200
MAX_LIST_ROW_TITLE = 24
MAX_LIST_ROW_DESCRIPTION = 72
MAX_CTA_DISPLAY_TEXT = 20

MAX_TEMPLATE_NAME = 512
MAX_TEMPLATE_HEADER_TEXT = 60
MAX_TEMPLATE_BODY = 1024
MAX_TEMPLATE_FOOTER = 60
MAX_TEMPLATE_BUTTONS = 10
MAX_TEMPLATE_BUTTON_TEXT = 25
MAX_TEMPLATE_URL = 2000

MB = 1024 * 1024
# kind -> (accepted MIME types, maximum size in bytes). Stickers: 100 KB static, 500 KB animated;
# an upload cannot tell which, so the larger bound applies.
MEDIA_LIMITS: dict[str, tuple[frozenset[str], int]] = {
    "image": (frozenset({"image/jpeg", "image/png"}), 5 * MB),
    "video": (frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
    "audio": (
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
        16 * MB,
    ),
    "document": (
        frozenset(
            {
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * MB,
    ),
    "sticker": (frozenset({"image/webp"}), 500 * 1024),
}
MEDIA_KINDS = tuple(MEDIA_LIMITS)
CAPTION_KINDS = frozenset({"image", "video", "document"})

SEND_TYPES = frozenset(
    {"text", "location", "contacts", "interactive", "template", "reaction", *MEDIA_KINDS}
)
INTERACTIVE_TYPES = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "flow",
        "product",
        "product_list",
        "catalog_message",
        "location_request_message",
        "call_permission_request",
        "request_contact_info",
        "voice_call",
        "carousel",
    }
)
# Interactive types whose body text is required.
_BODY_REQUIRED = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "flow",
        "product_list",
        "catalog_message",
        "location_request_message",
        "call_permission_request",
        "request_contact_info",
    }
)
TEMPLATE_CATEGORIES = frozenset({"MARKETING", "UTILITY", "AUTHENTICATION"})
TEMPLATE_HEADER_FORMATS = frozenset(
    {"TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION", "PRODUCT", "GIF"}
)
TEMPLATE_BUTTON_TYPES = frozenset(
    {
        "QUICK_REPLY",
        "URL",
        "PHONE_NUMBER",
        "COPY_CODE",
        "OTP",
        "FLOW",
        "CATALOG",
        "MPM",
        "VOICE_CALL",
    }
)

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_ENDS_WITH_PLACEHOLDER_RE = re.compile(r"\{\{\s*[A-Za-z0-9_]+\s*\}\}$")
PARAMETER_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9_]+$")
BSUID_RE = re.compile(r"^[A-Z]{2}(?:\.[A-Z]+)*\.[0-9A-Za-z]+$")
_PHONE_STRIP_RE = re.compile(r"[\s()+\-.]")


@dataclass(frozen=True)
class Problem:
    """A failed check: the Meta error ``code`` (and subcode) the API would answer with."""

    code: int
    details: str
    subcode: int | None = None


class _Invalid(Exception):
    def __init__(self, code: int, details: str, subcode: int | None = None) -> None:
        super().__init__(details)
        self.problem = Problem(code, details, subcode)


def _fail(code: int, details: str, subcode: int | None = None) -> None:
    raise _Invalid(code, details, subcode)


def _run(check, *args) -> Problem | None:
    try:
        check(*args)
    except _Invalid as exc:
        return exc.problem
    return None


# --- Recipients ---------------------------------------------------------------------------------


def normalize_phone(value: str) -> str | None:
    """Digits of a phone number (``"+55 (11) 98888-7777"`` -> ``"5511988887777"``) or None."""
    digits = _PHONE_STRIP_RE.sub("", value or "")
    return digits if digits.isdigit() and 7 <= len(digits) <= 15 else None


def is_bsuid(value: str) -> bool:
    """True for a business-scoped user ID such as ``US.13491208655302741918``."""
    return bool(BSUID_RE.match(value or ""))


# --- Media --------------------------------------------------------------------------------------


def base_mime(mime_type: str) -> str:
    """``"audio/ogg; codecs=opus"`` -> ``"audio/ogg"``."""
    return (mime_type or "").split(";", 1)[0].strip().lower()


def media_kind_for_mime(mime_type: str) -> str | None:
    mime = base_mime(mime_type)
    for kind, (mimes, _size) in MEDIA_LIMITS.items():
        if mime in mimes:
            return kind
    return None


def check_upload(mime_type: str, size: int) -> Problem | None:
    kind = media_kind_for_mime(mime_type)
    if kind is None:
        accepted = ", ".join(sorted(m for mimes, _ in MEDIA_LIMITS.values() for m in mimes))
        return Problem(
            100,
            f"Files of type {mime_type or '(none)'} cannot be sent on WhatsApp. "
            f"Accepted types: {accepted}.",
        )
    if size <= 0:
        return Problem(100, "The file is empty.")
    limit = MEDIA_LIMITS[kind][1]
    if size > limit:
        return Problem(
            131053,
            f"The {kind} is {_human_size(size)}; WhatsApp accepts at most "
            f"{_human_size(limit)} for this type.",
        )
    return None


def _human_size(size: int) -> str:
    if size >= MB:
        return f"{size / MB:.1f} MB"
    return f"{size / 1024:.0f} KB"


# --- Outbound messages --------------------------------------------------------------------------


def check_message(payload: Any) -> Problem | None:
    """Check the JSON body of a send to ``POST /{phone-number-id}/messages``."""
    return _run(_check_message, payload)


def check_read_receipt(payload: Any) -> Problem | None:
    """Check a mark-as-read (and typing indicator) body."""
    return _run(_check_read_receipt, payload)


def _check_read_receipt(payload: Any) -> None:
    if not isinstance(payload, dict):
        _fail(100, "The request body must be a JSON object.")
    if payload.get("messaging_product") != "whatsapp":
        _fail(100, 'The parameter messaging_product is required and must be "whatsapp".')
    if payload.get("status") != "read":
        _fail(100, 'The parameter status must be "read".')
    _check_message_id(payload.get("message_id"), "message_id")
    indicator = payload.get("typing_indicator")
    if indicator is not None and (
        not isinstance(indicator, dict) or indicator.get("type") != "text"
    ):
        _fail(100, 'typing_indicator must be {"type": "text"}.')


def _check_message(payload: Any) -> None:
    if not isinstance(payload, dict):
        _fail(100, "The request body must be a JSON object.")
    if payload.get("messaging_product") != "whatsapp":
        _fail(100, 'The parameter messaging_product is required and must be "whatsapp".')
    to, recipient = payload.get("to"), payload.get("recipient")
    if bool(to) == bool(recipient):
        _fail(100, "Exactly one of the parameters to or recipient is required.")
    for name, value in (("to", to), ("recipient", recipient)):
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            _fail(100, f"The parameter {name} must be a phone number or a user ID string.")
    if to and normalize_phone(to) is None and not is_bsuid(to):
        _fail(100, f"The parameter to is not a valid phone number: {to!r}.")
    if recipient and not is_bsuid(recipient):
        _fail(100, f"The parameter recipient is not a valid user ID: {recipient!r}.")
    if payload.get("recipient_type", "individual") not in ("individual", "group"):
        _fail(100, 'The parameter recipient_type must be "individual" or "group".')
    message_type = payload.get("type", "text")
    if message_type not in SEND_TYPES:
        _fail(
            100,
            f"The message type {message_type!r} is not supported. "
            f"Use one of: {', '.join(sorted(SEND_TYPES))}.",
        )
    if message_type not in payload:
        _fail(131008, f"The parameter {message_type} is required for a {message_type} message.")
    _check_context(payload.get("context"))
    callback = payload.get("biz_opaque_callback_data")
    if callback is not None:
        _check_text(callback, "biz_opaque_callback_data", MAX_CALLBACK_DATA, required=False)
    body = payload[message_type]
    if message_type == "text":
        _check_text_message(body)
    elif message_type in MEDIA_LIMITS:
        _check_media_message(message_type, body)
    elif message_type == "location":
        _check_location(body)
    elif message_type == "contacts":
        _check_contacts(body)
    elif message_type == "reaction":
        _check_reaction(body)
    elif message_type == "interactive":
        _check_interactive(body)
    elif message_type == "template":
        _check_template_message(body)


def _check_context(context: Any) -> None:
    if context is None:
        return
    if not isinstance(context, dict):
        _fail(100, "The parameter context must be an object with message_id.")
    _check_message_id(context.get("message_id"), "context.message_id")


def _check_message_id(value: Any, label: str) -> None:
    if not isinstance(value, str) or not value.strip():
        _fail(131008, f"The parameter {label} is required.")
    if len(value) > MAX_MESSAGE_ID:
        _fail(131009, f"The parameter {label} is not a valid message ID.")


def _check_text(value: Any, label: str, limit: int, *, required: bool = True) -> None:
    if value is None or value == "":
        if required:
            _fail(131008, f"The parameter {label} is required.")
        return
    if not isinstance(value, str):
        _fail(100, f"The parameter {label} must be a string.")
    if len(value) > limit:
        _fail(
            131009 if limit < MAX_TEXT_BODY else 100,
            f"{label} is {len(value)} characters long; the maximum is {limit}.",
        )


def _require_object(value: Any, label: str) -> dict:
    if not isinstance(value, dict):
        _fail(131008, f"The parameter {label} is required and must be an object.")
    return value


def _check_text_message(body: Any) -> None:
    body = _require_object(body, "text")
    _check_text(body.get("body"), "text.body", MAX_TEXT_BODY)
    if "preview_url" in body and not isinstance(body["preview_url"], bool):
        _fail(100, "The parameter text.preview_url must be true or false.")


def _check_media_object(body: Any, label: str) -> dict:
    body = _require_object(body, label)
    has_id, has_link = bool(body.get("id")), bool(body.get("link"))
    if has_id == has_link:
        _fail(
            131009 if has_id else 131008,
            f"{label} needs exactly one of id (an uploaded media ID) or link.",
        )
    if has_link and not _is_http_url(body["link"]):
        _fail(131009, f"{label}.link must be an http(s) URL.")
    if has_id and not isinstance(body["id"], str | int):
        _fail(100, f"{label}.id must be a media ID string.")
    return body


def _check_media_message(kind: str, body: Any) -> None:
    body = _check_media_object(body, kind)
    if "caption" in body:
        if kind not in CAPTION_KINDS:
            _fail(100, f"A caption cannot be sent with {kind} messages.")
        _check_text(body["caption"], f"{kind}.caption", MAX_CAPTION, required=False)
    if "filename" in body:
        if kind != "document":
            _fail(100, "Only documents take a filename.")
        _check_text(body["filename"], "document.filename", 240, required=False)
    if "voice" in body and (kind != "audio" or not isinstance(body["voice"], bool)):
        _fail(100, "voice is a true/false flag of audio messages.")


def _check_location(body: Any) -> None:
    body = _require_object(body, "location")
    for name, bound in (("latitude", 90), ("longitude", 180)):
        value = body.get(name)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                value = None
        if not isinstance(value, int | float) or isinstance(value, bool):
            _fail(131008, f"The parameter location.{name} is required and must be a number.")
        if not -bound <= value <= bound:
            _fail(131009, f"location.{name} must be between -{bound} and {bound}.")
    for name in ("name", "address"):
        _check_text(body.get(name), f"location.{name}", 1000, required=False)


def _check_contacts(body: Any) -> None:
    if not isinstance(body, list) or not body:
        _fail(131008, "The parameter contacts must be a non-empty list of contact cards.")
    for index, card in enumerate(body):
        card = _require_object(card, f"contacts[{index}]")
        name = _require_object(card.get("name"), f"contacts[{index}].name")
        _check_text(name.get("formatted_name"), f"contacts[{index}].name.formatted_name", 512)
        for field in ("phones", "emails", "urls", "addresses"):
            items = card.get(field)
            if items is not None and not (
                isinstance(items, list) and all(isinstance(i, dict) for i in items)
            ):
                _fail(100, f"contacts[{index}].{field} must be a list of objects.")


def _check_reaction(body: Any) -> None:
    body = _require_object(body, "reaction")
    _check_message_id(body.get("message_id"), "reaction.message_id")
    emoji = body.get("emoji", "")
    if not isinstance(emoji, str):
        _fail(100, "reaction.emoji must be a string.")
    if emoji and (
        len(emoji) > 10 or any(c.isascii() and (c.isalnum() or c.isspace()) for c in emoji)
    ):
        _fail(131009, "reaction.emoji must be a single emoji, or empty to remove the reaction.")


def _check_interactive(body: Any) -> None:
    body = _require_object(body, "interactive")
    kind = body.get("type")
    if kind not in INTERACTIVE_TYPES:
        _fail(
            100,
            f"interactive.type {kind!r} is not supported. "
            f"Use one of: {', '.join(sorted(INTERACTIVE_TYPES))}.",
        )
    text_body = body.get("body")
    if text_body is not None or kind in _BODY_REQUIRED:
        text_body = _require_object(text_body, "interactive.body")
        _check_text(
            text_body.get("text"),
            "interactive.body.text",
            MAX_INTERACTIVE_BODY,
            required=kind in _BODY_REQUIRED,
        )
    if body.get("header") is not None:
        _check_interactive_header(kind, body["header"])
    if body.get("footer") is not None:
        footer = _require_object(body["footer"], "interactive.footer")
        _check_text(footer.get("text"), "interactive.footer.text", MAX_INTERACTIVE_FOOTER)
    if kind == "location_request_message" and "action" not in body:
        return
    action = _require_object(body.get("action"), "interactive.action")
    if kind == "button":
        _check_reply_buttons(action)
    elif kind == "list":
        _check_list(action)
    elif kind == "cta_url":
        _check_cta_url(action)


def _check_interactive_header(kind: str, header: Any) -> None:
    header = _require_object(header, "interactive.header")
    header_type = header.get("type")
    allowed = (
        ("text",) if kind in ("list", "product_list") else ("text", "image", "video", "document")
    )
    if header_type not in allowed:
        _fail(131009, f"A {kind} message header must be of type {' or '.join(allowed)}.")
    if header_type == "text":
        _check_text(header.get("text"), "interactive.header.text", MAX_INTERACTIVE_HEADER_TEXT)
    else:
        _check_media_object(header.get(header_type), f"interactive.header.{header_type}")


def _check_unique(values: list[str], label: str) -> None:
    if len(set(values)) != len(values):
        _fail(131009, f"{label} must be unique.")


def _check_reply_buttons(action: dict) -> None:
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_REPLY_BUTTONS:
        _fail(131009, f"A button message needs 1 to {MAX_REPLY_BUTTONS} reply buttons.")
    ids, titles = [], []
    for index, button in enumerate(buttons):
        button = _require_object(button, f"buttons[{index}]")
        if button.get("type") != "reply":
            _fail(131009, f'buttons[{index}].type must be "reply".')
        reply = _require_object(button.get("reply"), f"buttons[{index}].reply")
        _check_text(reply.get("id"), f"buttons[{index}].reply.id", MAX_REPLY_BUTTON_ID)
        _check_text(
            reply.get("title"), f"Button title {reply.get('title')!r}", MAX_REPLY_BUTTON_TITLE
        )
        ids.append(reply["id"])
        titles.append(reply["title"])
    _check_unique(ids, "Button IDs")
    _check_unique(titles, "Button titles")


def _check_list(action: dict) -> None:
    _check_text(action.get("button"), "List button label", MAX_LIST_BUTTON)
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= MAX_LIST_SECTIONS:
        _fail(131009, f"A list message needs 1 to {MAX_LIST_SECTIONS} sections.")
    row_ids: list[str] = []
    for index, section in enumerate(sections):
        section = _require_object(section, f"sections[{index}]")
        _check_text(
            section.get("title"),
            f"sections[{index}].title",
            MAX_LIST_SECTION_TITLE,
            required=len(sections) > 1,
        )
        rows = section.get("rows")
        if not isinstance(rows, list) or not rows:
            _fail(131009, f"sections[{index}] needs at least one row.")
        for row_index, row in enumerate(rows):
            label = f"sections[{index}].rows[{row_index}]"
            row = _require_object(row, label)
            _check_text(row.get("id"), f"{label}.id", MAX_LIST_ROW_ID)
            _check_text(row.get("title"), f"Row title {row.get('title')!r}", MAX_LIST_ROW_TITLE)
            _check_text(
                row.get("description"),
                f"{label}.description",
                MAX_LIST_ROW_DESCRIPTION,
                required=False,
            )
            row_ids.append(row["id"])
    if len(row_ids) > MAX_LIST_ROWS:
        _fail(
            131009,
            f"A list message can hold at most {MAX_LIST_ROWS} rows in total; "
            f"it has {len(row_ids)}.",
        )
    _check_unique(row_ids, "Row IDs")


def _check_cta_url(action: dict) -> None:
    if action.get("name") != "cta_url":
        _fail(131009, 'A cta_url message needs action.name "cta_url".')
    parameters = _require_object(action.get("parameters"), "action.parameters")
    _check_text(parameters.get("display_text"), "CTA display_text", MAX_CTA_DISPLAY_TEXT)
    if not _is_http_url(parameters.get("url")):
        _fail(131009, "The CTA url must be an http(s) URL.")


def _is_http_url(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"^https?://[^\s/$.?#][^\s]*$", value) is not None


# --- Template messages --------------------------------------------------------------------------


def _check_template_message(body: Any) -> None:
    body = _require_object(body, "template")
    _check_text(body.get("name"), "template.name", MAX_TEMPLATE_NAME)
    language = _require_object(body.get("language"), "template.language")
    _check_text(language.get("code"), "template.language.code", 20)
    components = body.get("components")
    if components is None:
        return
    if not isinstance(components, list):
        _fail(100, "template.components must be a list.")
    for index, component in enumerate(components):
        label = f"template.components[{index}]"
        component = _require_object(component, label)
        kind = str(component.get("type", "")).lower()
        if kind not in ("header", "body", "footer", "button", "carousel", "limited_time_offer"):
            _fail(100, f"{label}.type {component.get('type')!r} is not a template component.")
        if kind == "button":
            if not component.get("sub_type"):
                _fail(131008, f"{label}.sub_type is required for a button component.")
            if button_index(component) is None:
                _fail(131009, f"{label}.index must be the button position, 0 to 9.")
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            _fail(100, f"{label}.parameters must be a list.")
        named = [
            isinstance(p, dict) and "parameter_name" in p
            for p in parameters
            if isinstance(p, dict) and p.get("type") == "text"
        ]
        if any(named) and not all(named):
            _fail(
                100,
                f"{label}: parameters must be all named (parameter_name) or all "
                "positional, not mixed.",
            )
        for param_index, parameter in enumerate(parameters):
            _check_template_parameter(parameter, f"{label}.parameters[{param_index}]", kind)


def button_index(component: dict) -> int | None:
    """The ``index`` of a button component as an int (Meta samples use strings, PYWA ints)."""
    value = component.get("index")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 <= value <= 9 else None


def _check_template_parameter(parameter: Any, label: str, component: str) -> None:
    parameter = _require_object(parameter, label)
    kind = parameter.get("type")
    if not isinstance(kind, str) or not kind:
        _fail(131008, f"{label}.type is required.")
    kind = kind.lower()
    if "parameter_name" in parameter and not PARAMETER_NAME_RE.match(
        str(parameter["parameter_name"])
    ):
        _fail(131009, f"{label}.parameter_name must use lowercase letters, digits and underscores.")
    if kind == "text":
        limit = MAX_TEMPLATE_HEADER_TEXT if component == "header" else 32768
        _check_text(parameter.get("text"), f"{label}.text", limit)
        if component == "body" and re.search(r"[\n\t]| {5,}", parameter["text"]):
            _fail(
                132012,
                f"{label}.text cannot contain new lines, tabs or more than 4 consecutive spaces.",
            )
    elif kind == "currency":
        currency = _require_object(parameter.get("currency"), f"{label}.currency")
        _check_text(currency.get("fallback_value"), f"{label}.currency.fallback_value", 100)
        if not (isinstance(currency.get("code"), str) and len(currency["code"]) == 3):
            _fail(131009, f"{label}.currency.code must be an ISO 4217 code such as BRL.")
        if not isinstance(currency.get("amount_1000"), int):
            _fail(131009, f"{label}.currency.amount_1000 must be an integer (amount x 1000).")
    elif kind == "date_time":
        date_time = _require_object(parameter.get("date_time"), f"{label}.date_time")
        _check_text(date_time.get("fallback_value"), f"{label}.date_time.fallback_value", 100)
    elif kind in ("image", "video", "document"):
        _check_media_object(parameter.get(kind), f"{label}.{kind}")
    elif kind == "location":
        _check_location(parameter.get("location"))
    elif kind == "payload":
        _check_text(parameter.get("payload"), f"{label}.payload", 1000)
    elif kind == "coupon_code":
        _check_text(parameter.get("coupon_code"), f"{label}.coupon_code", 20)


def placeholders(text: str) -> list[str]:
    """Distinct ``{{...}}`` variable names in order of first appearance."""
    seen: list[str] = []
    for name in PLACEHOLDER_RE.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def check_template_parameters(definition: dict, components: list[dict] | None) -> Problem | None:
    """Check a send's components against a template definition (as listed by the API).

    Mirrors Meta's 132000 (parameter count mismatch), 132012 (format mismatch) and 132005 (text
    too long once filled in).
    """
    return _run(_check_template_parameters, definition, components or [])


def _definition_parts(definition: dict) -> tuple[dict | None, dict | None, list[dict]]:
    header = body = None
    buttons: list[dict] = []
    for component in definition.get("components") or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header = component
        elif kind == "BODY":
            body = component
        elif kind == "BUTTONS":
            buttons = list(component.get("buttons") or [])
    return header, body, buttons


def _check_template_parameters(definition: dict, components: list[dict]) -> None:
    sent: dict[Any, list[dict]] = {}
    for component in components:
        kind = str(component.get("type", "")).lower()
        key = ("button", button_index(component)) if kind == "button" else kind
        sent[key] = list(component.get("parameters") or [])
    header, body, buttons = _definition_parts(definition)

    header_params = sent.pop("header", [])
    header_format = str((header or {}).get("format", "TEXT")).upper()
    if header is not None and header_format == "TEXT":
        _check_text_params(
            "header", header.get("text", ""), header_params, MAX_TEMPLATE_HEADER_TEXT
        )
    elif header is not None and header_format in ("IMAGE", "VIDEO", "DOCUMENT", "LOCATION"):
        if len(header_params) != 1:
            _fail(
                132000,
                f"header: number of parameters ({len(header_params)}) does not match "
                "the expected number of params (1)",
            )
        if str(header_params[0].get("type", "")).lower() != header_format.lower():
            _fail(132012, f"header: the template expects a {header_format.lower()} parameter.")
    elif header_params:
        _fail(
            132000,
            f"header: number of parameters ({len(header_params)}) does not match the "
            "expected number of params (0)",
        )

    _check_text_params(
        "body", (body or {}).get("text", ""), sent.pop("body", []), MAX_TEMPLATE_BODY
    )

    for index, button in enumerate(buttons):
        params = sent.pop(("button", index), [])
        if str(button.get("type", "")).upper() == "URL":
            expected = len(placeholders(button.get("url", "")))
            if len(params) != expected:
                _fail(
                    132000,
                    f"button {index}: number of parameters ({len(params)}) does not "
                    f"match the expected number of params ({expected})",
                )
    for key in sent:
        if isinstance(key, tuple):
            _fail(132000, f"button {key[1]}: the template has no button at that index.")


def _check_text_params(component: str, text: str, params: list[dict], limit: int) -> None:
    expected = placeholders(text)
    if len(params) != len(expected):
        _fail(
            132000,
            f"{component}: number of localizable_params ({len(params)}) does not match "
            f"the expected number of params ({len(expected)})",
        )
    values: dict[str, str] = {}
    for position, param in enumerate(params, start=1):
        if str(param.get("type", "")).lower() not in ("text", "currency", "date_time"):
            _fail(132012, f"{component}: parameter {position} must be text.")
        name = param.get("parameter_name") or str(position)
        values[name] = _parameter_text(param)
    if set(values) != set(expected):
        _fail(
            132000,
            f"{component}: parameters {sorted(values)} do not match the template's "
            f"variables {sorted(expected)}.",
        )
    filled = PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), ""), text)
    if len(filled) > limit:
        _fail(
            132005,
            f"{component}: the text is {len(filled)} characters once filled in; the "
            f"maximum is {limit}.",
        )


def _parameter_text(param: dict) -> str:
    kind = str(param.get("type", "")).lower()
    if kind == "text":
        return str(param.get("text", ""))
    return str((param.get(kind) or {}).get("fallback_value", ""))


# --- Template definitions -----------------------------------------------------------------------


def check_template_definition(
    name: str,
    language: str,
    category: str,
    components: list[dict],
    parameter_format: str | None = None,
) -> Problem | None:
    """Check a template before ``POST /{waba-id}/message_templates``."""
    return _run(_check_template_definition, name, language, category, components, parameter_format)


def _check_template_definition(
    name: Any, language: Any, category: Any, components: Any, parameter_format: Any
) -> None:
    if not isinstance(name, str) or not TEMPLATE_NAME_RE.match(name):
        _fail(100, "The template name can only hold lowercase letters, digits and underscores.")
    if len(name) > MAX_TEMPLATE_NAME:
        _fail(100, f"The template name is longer than {MAX_TEMPLATE_NAME} characters.", 2388040)
    if not isinstance(language, str) or not re.match(r"^[a-z]{2,3}(_[A-Z]{2})?$", language):
        _fail(100, f"The template language {language!r} is not a language code such as pt_BR.")
    if not isinstance(category, str) or category.upper() not in TEMPLATE_CATEGORIES:
        _fail(
            100, f"The template category must be one of {', '.join(sorted(TEMPLATE_CATEGORIES))}."
        )
    if parameter_format not in (None, "POSITIONAL", "NAMED"):
        _fail(100, 'parameter_format must be "POSITIONAL" or "NAMED".')
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        _fail(100, "The template components must be a list of objects.")
    kinds = [str(c.get("type", "")).upper() for c in components]
    for kind in kinds:
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            _fail(100, f"{kind or '(empty)'} is not a template component type.")
        if kinds.count(kind) > 1:
            _fail(100, f"A template can have only one {kind} component.")
    if "BODY" not in kinds and category.upper() != "AUTHENTICATION":
        _fail(100, "A template needs a BODY component.", 2388047)

    variables: list[str] = []
    for component, kind in zip(components, kinds, strict=True):
        if kind == "HEADER":
            variables += _check_definition_header(component)
        elif kind == "BODY":
            variables += _check_definition_body(component, category.upper())
        elif kind == "FOOTER":
            _check_definition_text(component, "Footer", MAX_TEMPLATE_FOOTER, 2388073)
            if placeholders(component.get("text", "")):
                _fail(100, "The footer cannot contain variables.", 2388073)
        elif kind == "BUTTONS":
            _check_definition_buttons(component)
    named = [v for v in variables if not v.isdigit()]
    if named and len(named) != len(variables):
        _fail(
            100,
            "Variables must be all numbered ({{1}}) or all named ({{first_name}}), not mixed.",
            2388047,
        )
    if named and parameter_format != "NAMED":
        _fail(100, 'Named variables need parameter_format "NAMED".', 2388047)
    if variables and not named and parameter_format == "NAMED":
        _fail(
            100, 'parameter_format "NAMED" needs named variables such as {{first_name}}.', 2388047
        )
    for variable in named:
        if not PARAMETER_NAME_RE.match(variable):
            _fail(
                100,
                f"The variable name {variable!r} must use lowercase letters, digits and "
                "underscores.",
                2388047,
            )


def _check_definition_text(component: dict, label: str, limit: int, subcode: int) -> str:
    text = component.get("text")
    if not isinstance(text, str) or not text.strip():
        _fail(100, f"{label} text is required.", subcode)
    if len(text) > limit:
        _fail(100, f"{label} text is {len(text)} characters long; the maximum is {limit}.", 2388040)
    return text


def _check_positional(text: str, label: str) -> list[str]:
    names = placeholders(text)
    numbers = sorted(int(n) for n in names if n.isdigit())
    if numbers and numbers != list(range(1, len(numbers) + 1)):
        _fail(
            100,
            f"{label} variables must be numbered in sequence from {{{{1}}}}; found "
            f"{', '.join('{{' + str(n) + '}}' for n in numbers)}.",
            2388047,
        )
    return names


def _check_examples(component: dict, names: list[str], label: str, key: str) -> None:
    if not names:
        return
    example = component.get("example")
    if not isinstance(example, dict) or not (
        example.get(key) or example.get(f"{key}_named_params")
    ):
        _fail(100, f"{label} has variables: add example values for them ({key}).", 2388047)


def _check_definition_header(component: dict) -> list[str]:
    header_format = str(component.get("format", "")).upper()
    if header_format not in TEMPLATE_HEADER_FORMATS:
        _fail(
            100,
            f"Header format must be one of {', '.join(sorted(TEMPLATE_HEADER_FORMATS))}.",
            2388047,
        )
    if header_format != "TEXT":
        if header_format in ("IMAGE", "VIDEO", "DOCUMENT", "GIF"):
            example = component.get("example")
            if not isinstance(example, dict) or not example.get("header_handle"):
                _fail(100, f"A {header_format} header needs an example header_handle.", 2388047)
        return []
    text = _check_definition_text(component, "Header", MAX_TEMPLATE_HEADER_TEXT, 2388047)
    names = _check_positional(text, "Header")
    if len(names) > 1:
        _fail(100, "The header can hold at most one variable.", 2388047)
    _check_examples(component, names, "Header", "header_text")
    return names


def _check_definition_body(component: dict, category: str) -> list[str]:
    if category == "AUTHENTICATION" and "text" not in component:
        return []
    text = _check_definition_text(component, "Body", MAX_TEMPLATE_BODY, 2388047)
    names = _check_positional(text, "Body")
    stripped = text.strip()
    if names and (PLACEHOLDER_RE.match(stripped) or _ENDS_WITH_PLACEHOLDER_RE.search(stripped)):
        _fail(100, "The body cannot start or end with a variable.", 2388299)
    _check_examples(component, names, "Body", "body_text")
    return names


def _check_definition_buttons(component: dict) -> None:
    buttons = component.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_TEMPLATE_BUTTONS:
        _fail(100, f"A template has 1 to {MAX_TEMPLATE_BUTTONS} buttons.")
    for index, button in enumerate(buttons):
        if not isinstance(button, dict):
            _fail(100, f"Button {index} must be an object.")
        kind = str(button.get("type", "")).upper()
        if kind not in TEMPLATE_BUTTON_TYPES:
            _fail(
                100,
                f"Button {index} type must be one of {', '.join(sorted(TEMPLATE_BUTTON_TYPES))}.",
            )
        if kind not in ("COPY_CODE", "OTP"):
            _check_definition_text(button, f"Button {index}", MAX_TEMPLATE_BUTTON_TEXT, 2388047)
        if kind == "URL":
            url = button.get("url")
            if not _is_http_url(url) or len(url) > MAX_TEMPLATE_URL:
                _fail(
                    100,
                    f"Button {index} needs an http(s) url of at most {MAX_TEMPLATE_URL} "
                    "characters.",
                )
            names = placeholders(url)
            if len(names) > 1 or (names and not _ENDS_WITH_PLACEHOLDER_RE.search(url)):
                _fail(100, f"Button {index} url can hold one variable, at its end.", 2388047)
            if names and not button.get("example"):
                _fail(100, f"Button {index} url has a variable: add an example URL.", 2388047)
        if kind == "PHONE_NUMBER" and not normalize_phone(str(button.get("phone_number", ""))):
            _fail(100, f"Button {index} needs a phone_number.")
