"""Template filters and tags for the chat timeline (``{% load inbox_tags %}``).

Everything a customer wrote is untrusted: ``whatsapp_format`` escapes first and only then adds
the few tags WhatsApp formatting and links need. The other helpers turn the stored Cloud API
objects (``Message.content``) into plain values the timeline template prints; none of them
touches the database, so a timeline whose messages were fetched with ``media`` prefetched and
``reply_to``/``author_user`` selected renders without extra queries.
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from inbox import router

register = template.Library()

# --- WhatsApp formatting -----------------------------------------------------------------------

_TOKEN = "\x00{}\x00"
_TOKEN_RE = re.compile(r"\x00(\d+)\x00")
_CODE_BLOCK_RE = re.compile(r"```(.+?)```", re.DOTALL)
_INLINE_CODE_RE = re.compile(r"`([^`\n]+)`")
# http(s) links and bare www. links; quotes, angle brackets and whitespace always end a link.
_URL_RE = re.compile(r"""(?:https?://|www\.)[^\s<>"'`\x00]+""", re.IGNORECASE)
_URL_TRAILING = ".,;:!?*_~"
_STYLES = (
    ("*", "strong"),
    ("_", "em"),
    ("~", "del"),
)
_TAG_RE = re.compile(r"<(/?)(strong|em|del)>")
_LINK_ATTRS = 'target="_blank" rel="noopener noreferrer nofollow"'


def _style_re(marker: str) -> re.Pattern:
    m = re.escape(marker)
    # WhatsApp: the marker hugs the text (no inner edge spaces) and sits at a word boundary.
    return re.compile(rf"(?<![^\W_])(?<!{m}){m}(?=\S)([^{m}\n]*?\S){m}(?![^\W_])(?!{m})")


_STYLE_RES = [(_style_re(marker), tag) for marker, tag in _STYLES]


def _balanced(html: str) -> bool:
    stack = []
    for closing, tag in _TAG_RE.findall(html):
        if not closing:
            stack.append(tag)
        elif not stack or stack.pop() != tag:
            return False
    return not stack


def _wrap(match: re.Match, tag: str) -> str:
    inner = match.group(1)
    if not _balanced(inner):  # markers that straddle another style's tags stay literal
        return match.group(0)
    return f"<{tag}>{inner}</{tag}>"


def _split_url(candidate: str) -> tuple[str, str]:
    """Separate sentence punctuation (and unbalanced closing brackets) from the link."""
    url = candidate
    while url:
        last = url[-1]
        if last in _URL_TRAILING or (last == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
            continue
        break
    return url, candidate[len(url) :]


def _link(url: str) -> str:
    href = url if url.lower().startswith(("http://", "https://")) else "https://" + url
    return f'<a href="{escape(href)}" {_LINK_ATTRS}>{escape(url)}</a>'


@register.filter
def whatsapp_format(value: Any) -> SafeString:
    """Escape ``value`` and render WhatsApp's *bold*, _italic_, ~strike~, ```mono```,
    `code`, links and line breaks as HTML. The input is always treated as untrusted text."""
    text = "" if value is None else str(value)
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    pieces: list[str] = []

    def keep(html: str) -> str:
        pieces.append(html)
        return _TOKEN.format(len(pieces) - 1)

    text = _CODE_BLOCK_RE.sub(
        lambda m: keep(f'<code class="wa-mono">{escape(m.group(1).strip(chr(10)))}</code>'),
        text,
    )
    text = _INLINE_CODE_RE.sub(lambda m: keep(f"<code>{escape(m.group(1))}</code>"), text)

    def link(match: re.Match) -> str:
        url, trailing = _split_url(match.group(0))
        if len(url) <= len("https://") and "." not in url:
            return match.group(0)
        return keep(_link(url)) + trailing

    text = _URL_RE.sub(link, text)
    html = escape(text)
    for pattern, tag in _STYLE_RES:
        html = pattern.sub(lambda m, tag=tag: _wrap(m, tag), html)
    html = html.replace("\n", "<br>")
    # Tokens may nest (never today, but cheap to allow): substitute until none are left.
    for _i in range(3):
        if "\x00" not in html:
            break
        html = _TOKEN_RE.sub(lambda m: pieces[int(m.group(1))], html)
    return mark_safe(html)  # noqa: S308 - every piece above was escaped


# --- Small value helpers -----------------------------------------------------------------------


@register.filter
def wa_payload(message) -> dict:
    """The Cloud API object of the message's own type (``content[<type>]``), always a dict."""
    content = message.content if isinstance(message.content, dict) else {}
    kind = content.get("type") or message.type
    payload = content.get(kind)
    if payload is None:
        payload = content.get(message.type)
    if isinstance(payload, list):
        return {"items": payload}
    return payload if isinstance(payload, dict) else {}


class _Lenient(dict):
    """A message's stored content as the timeline template reads it: a key it lacks reads as
    an empty ``_Lenient`` (false, printed as ""), so ``content.context.forwarded`` on a plain
    text message costs one dictionary lookup. On a plain dict Django's template engine raised
    and caught four exceptions per missing key (``dir()`` included): 181 per chat page, about
    a fifth of its messages' render time."""

    __slots__ = ()

    def __missing__(self, key):
        return _NOTHING

    def __str__(self) -> str:
        return dict.__str__(self) if self else ""


_NOTHING = _Lenient()


@register.filter
def lenient(content) -> dict:
    """``content`` (a message's stored JSON) for the timeline template; see ``_Lenient``."""
    return _Lenient(content) if isinstance(content, dict) else _NOTHING


@register.filter
def reply_choice(payload: dict) -> dict:
    """The button or list row a customer chose (``interactive[<interactive type>]``)."""
    choice = (payload or {}).get((payload or {}).get("type") or "")
    return choice if isinstance(choice, dict) else {}


@register.filter
def handler_label(key: str) -> str:
    """Who answered a customer message, in words ("AI assistant", "a team member")."""
    return router.label_for(key)


@register.filter
def quoted_author(message) -> str:
    """Who wrote a quoted message, without a query: the teammate's name when ``author_user``
    was loaded with it (``select_related("reply_to__author_user")``), else the author kind."""
    if message.direction == "in":
        return _("Customer")
    field = type(message)._meta.get_field("author_user")
    if message.author_user_id and field.is_cached(message):
        return message.author_user.display_name
    return str(message.get_author_type_display())


@register.filter
def first_media(message):
    """The message's first stored media (uses the prefetched ``media`` cache when present)."""
    items = list(message.media.all())
    return items[0] if items else None


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@register.filter
def map_url(location: dict) -> str:
    """An OpenStreetMap link centred on a location's coordinates ("" when they are invalid)."""
    if not isinstance(location, dict):
        return ""
    lat, lon = _number(location.get("latitude")), _number(location.get("longitude"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return ""
    query = urlencode({"mlat": f"{lat:.6f}", "mlon": f"{lon:.6f}"})
    return f"https://www.openstreetmap.org/?{query}#map=16/{lat:.6f}/{lon:.6f}"


@register.filter
def coordinates(location: dict) -> str:
    """``-23.561414, -46.655881`` (six decimals, about 10 cm), or "" when missing."""
    if not isinstance(location, dict):
        return ""
    lat, lon = _number(location.get("latitude")), _number(location.get("longitude"))
    if lat is None or lon is None:
        return ""
    return f"{lat:.6f}, {lon:.6f}"


@register.filter
def safe_url(value) -> str:
    """``value`` when it is an http(s) URL, else "" (never a ``javascript:`` or data URL)."""
    url = str(value or "").strip()
    if re.match(r"^https?://[^\s<>\"'`]+$", url, re.IGNORECASE):
        return url
    return ""


@register.filter
def contact_cards(payload: dict) -> list[dict]:
    """Cards of a contacts message as ``{"name", "org", "phones": [...], "emails": [...]}``.

    Inbound content wraps the list (``{"contacts": [...]}``); outbound content is the list."""
    if isinstance(payload, dict):
        cards = payload.get("contacts", payload.get("items", []))
    else:
        cards = payload
    result = []
    for card in cards if isinstance(cards, list) else []:
        if not isinstance(card, dict):
            continue
        name = card.get("name") or {}
        if isinstance(name, dict):
            full = name.get("formatted_name") or " ".join(
                str(name[k]) for k in ("first_name", "middle_name", "last_name") if name.get(k)
            )
        else:
            full = str(name)
        phones = [
            {
                "phone": str(p.get("phone") or p.get("wa_id") or ""),
                "type": str(p.get("type") or ""),
                "tel": re.sub(r"[^\d+]", "", str(p.get("phone") or p.get("wa_id") or "")),
            }
            for p in card.get("phones") or []
            if isinstance(p, dict) and (p.get("phone") or p.get("wa_id"))
        ]
        emails = [
            str(e.get("email"))
            for e in card.get("emails") or []
            if isinstance(e, dict) and e.get("email")
        ]
        org = card.get("org") or {}
        result.append(
            {
                "name": full or _("Unnamed contact"),
                "org": str(org.get("company") or "") if isinstance(org, dict) else "",
                "phones": phones,
                "emails": emails,
            }
        )
    return result


def _plain(number: Decimal) -> Decimal:
    """2 rather than 2.0 or 2E+1."""
    return number.quantize(Decimal(1)) if number == number.to_integral() else number.normalize()


def _decimal(value) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


@register.filter
def order_summary(payload: dict) -> dict:
    """Items of an order with line totals and, when every item shares a currency, the total."""
    items = []
    total = Decimal(0)
    currencies = set()
    for item in (payload or {}).get("product_items") or []:
        if not isinstance(item, dict):
            continue
        quantity = _decimal(item.get("quantity")) or Decimal(0)
        price = _decimal(item.get("item_price"))
        currency = str(item.get("currency") or "")
        currencies.add(currency)
        line = price * quantity if price is not None else None
        if line is not None:
            total += line
        items.append(
            {
                "product": str(item.get("product_retailer_id") or "—"),
                "quantity": _plain(quantity),
                "price": price,
                "currency": currency,
                "line_total": line,
            }
        )
    return {
        "items": items,
        "total": total if items and len(currencies) == 1 else None,
        "currency": next(iter(currencies)) if len(currencies) == 1 else "",
        "catalog_id": str((payload or {}).get("catalog_id") or ""),
        "note": str((payload or {}).get("text") or ""),
    }


@register.filter
def flow_answers(reply: dict) -> list[tuple[str, str]]:
    """The fields a customer filled in a WhatsApp Flow (``nfm_reply.response_json``)."""
    raw = (reply or {}).get("response_json")
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    return [
        (str(key).replace("_", " "), value if isinstance(value, str) else json.dumps(value))
        for key, value in data.items()
        if key != "flow_token"
    ]


@register.filter
def first_error(message) -> dict:
    """Meta's first error of an inbound message, as ``{"code", "title", "details"}``."""
    errors = (message.content or {}).get("errors") or []
    error = errors[0] if errors and isinstance(errors[0], dict) else {}
    details = error.get("details") or (error.get("error_data") or {}).get("details") or ""
    return {
        "code": error.get("code"),
        "title": error.get("title") or error.get("message") or "",
        "details": details,
    }


@register.filter
def day_label(value) -> str:
    """The day as people say it: Today, Yesterday, a weekday this week, else the date
    (in the active time zone)."""
    if value is None:
        return ""
    if hasattr(value, "tzinfo") and timezone.is_aware(value):
        value = timezone.localtime(value)
    day = value.date() if hasattr(value, "date") else value
    today = timezone.localdate()
    if day == today:
        return _("Today")
    if day == today - timedelta(days=1):
        return _("Yesterday")
    if today - timedelta(days=6) <= day < today:
        return date_format(day, "l")
    if day.year == today.year:
        return date_format(day, "j F")
    return date_format(day, "DATE_FORMAT")


# --- Templates ---------------------------------------------------------------------------------

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def _parameter_value(parameter: dict) -> str:
    kind = str(parameter.get("type") or "text").lower()
    if kind == "text":
        return str(parameter.get("text") or "")
    if kind in ("currency", "date_time"):
        return str((parameter.get(kind) or {}).get("fallback_value") or "")
    if kind == "payload":
        return str(parameter.get("payload") or "")
    if kind in ("image", "video", "document"):
        media = parameter.get(kind) or {}
        return str(media.get("filename") or media.get("link") or _("(%(kind)s)") % {"kind": kind})
    if kind == "location":
        location = parameter.get("location") or {}
        return str(location.get("name") or location.get("address") or coordinates(location))
    return str(parameter.get(kind) or "")


def _fill(text: str, parameters: list[dict]) -> str:
    positional = [_parameter_value(p) for p in parameters]
    named = {
        str(p["parameter_name"]): _parameter_value(p) for p in parameters if p.get("parameter_name")
    }

    def substitute(match: re.Match) -> str:
        key = match.group(1)
        if key.isdigit():
            index = int(key) - 1
            return positional[index] if 0 <= index < len(positional) else match.group(0)
        return named.get(key, match.group(0))

    return _PLACEHOLDER_RE.sub(substitute, text or "")


def _approved_components(templates_by_name, name: str, language: str) -> list[dict] | None:
    if not templates_by_name or not hasattr(templates_by_name, "get"):
        return None
    found = templates_by_name.get(f"{name}:{language}") or templates_by_name.get(name)
    if found is None:
        return None
    if hasattr(found, "components"):
        found = found.components
    elif isinstance(found, dict):
        found = found.get("components")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else None


@register.simple_tag
def template_preview(message, templates_by_name=None) -> dict:
    """What a sent template looked like: ``{"name", "language", "known", "header",
    "header_media", "body", "footer", "buttons": [{"text", "url"}], "parameters": [...]}``.

    ``templates_by_name`` maps a template name (or ``"name:language"``) to its approved
    components (a list, a dict with ``components`` or a ``MessageTemplate``); when the template
    is known its texts are shown with the sent parameters filled in, otherwise only the name and
    the parameters are listed."""
    sent = wa_payload(message)
    name = str(sent.get("name") or message.text or "")
    language = sent.get("language") or {}
    language = str(language.get("code") or "") if isinstance(language, dict) else str(language)
    header_params: list[dict] = []
    body_params: list[dict] = []
    button_params: dict[int, list[dict]] = {}
    for component in sent.get("components") or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type") or "").lower()
        params = [p for p in component.get("parameters") or [] if isinstance(p, dict)]
        if kind == "header":
            header_params = params
        elif kind == "body":
            body_params = params
        elif kind == "button":
            try:
                button_params[int(component.get("index", 0))] = params
            except (TypeError, ValueError):
                continue
    header_media = None
    for parameter in header_params:
        kind = str(parameter.get("type") or "").lower()
        if kind in ("image", "video", "document"):
            media = parameter.get(kind) or {}
            header_media = {
                "type": kind,
                "url": safe_url(media.get("link")),
                "filename": str(media.get("filename") or ""),
            }
    result = {
        "name": name,
        "language": language,
        "known": False,
        "header": "",
        "header_media": header_media,
        "body": "",
        "footer": "",
        "buttons": [],
        "parameters": [
            value
            for value in map(
                _parameter_value,
                header_params
                + body_params
                + [p for i in sorted(button_params) for p in button_params[i]],
            )
            if value
        ],
    }
    components = _approved_components(templates_by_name, name, language)
    if components is None:
        return result
    result["known"] = True
    for component in components:
        kind = str(component.get("type") or "").upper()
        if kind == "HEADER" and str(component.get("format") or "TEXT").upper() == "TEXT":
            result["header"] = _fill(str(component.get("text") or ""), header_params)
        elif kind == "BODY":
            result["body"] = _fill(str(component.get("text") or ""), body_params)
        elif kind == "FOOTER":
            result["footer"] = str(component.get("text") or "")
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                if not isinstance(button, dict):
                    continue
                url = ""
                if str(button.get("type") or "").upper() == "URL":
                    url = safe_url(
                        _fill(str(button.get("url") or ""), button_params.get(index, []))
                    )
                result["buttons"].append({"text": str(button.get("text") or ""), "url": url})
    return result


@register.simple_tag(takes_context=True)
def inbox_notifications(context) -> list:
    """The signed-in member's unread notifications, for the bell menu on every page."""
    from inbox.teamwork import notifications_for

    request = context.get("request")
    if request is None:
        return []
    return notifications_for(request.user, getattr(request, "organization", None))
