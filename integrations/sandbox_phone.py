"""The customer's side of a sandbox conversation, as the phone page shows it.

The sandbox keeps every message it saw for a number (``GET /_sandbox/numbers/{id}/messages``):
what the customer sent (with whether the business's webhook took it: delivered, retrying or
failed with the reason) and what the business sent them (text, media, templates, reply buttons
and list menus, which the page lets the customer tap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from django.utils.translation import gettext as _

from integrations import sandbox_links, services
from integrations.models import MessageTemplate, WhatsAppNumber


@dataclass
class Bubble:
    side: str  # "customer" (sent from this phone) or "business" (received by it)
    kind: str
    text: str
    at: datetime | None
    wamid: str
    state: str = ""  # customer: delivered / retrying / failed; business: sent / read / failed
    state_label: str = ""
    reason: str = ""
    header: str = ""
    footer: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)  # reply buttons: id, title
    menu_button: str = ""  # a list menu's button text
    sections: list[dict[str, Any]] = field(default_factory=list)  # title, rows: id/title/desc


def conversation(number: WhatsAppNumber, wa_id: str) -> list[Bubble]:
    """The sandbox's log of ``number`` with the customer ``wa_id``, oldest first."""
    services.sandbox_register(number)
    response = requests.get(
        f"{sandbox_links.sandbox_url()}/_sandbox/numbers/{number.phone_number_id}/messages",
        params={"wa_id": wa_id},
        headers=sandbox_links.control_headers(),
        timeout=5,
    )
    response.raise_for_status()
    templates = {
        (t.name, t.language): t.components
        for t in MessageTemplate.objects.filter(number=number).only(
            "name", "language", "components"
        )
    }
    return [bubble(entry, templates) for entry in response.json().get("messages", [])]


def bubble(entry: dict[str, Any], templates: dict | None = None) -> Bubble:
    at = datetime.fromtimestamp(entry["timestamp"], tz=UTC) if entry.get("timestamp") else None
    if entry.get("direction") == "inbound":
        return _customer_bubble(entry, at)
    return _business_bubble(entry, at, templates or {})


def _customer_bubble(entry: dict, at: datetime | None) -> Bubble:
    message = entry.get("message") or {}
    kind = message.get("type") or entry.get("type") or "text"
    body = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        text = body.get("body", "")
    elif kind == "interactive":
        reply = body.get("button_reply") or body.get("list_reply") or {}
        text = reply.get("title") or _("(form answer)")
    elif kind == "button":
        text = body.get("text", "")
    elif kind == "location":
        text = body.get("name") or f"📍 {body.get('latitude')}, {body.get('longitude')}"
    elif kind == "reaction":
        text = body.get("emoji") or _("(reaction removed)")
    elif kind in ("image", "video", "audio", "document", "sticker"):
        text = f"[{kind}] {body.get('caption') or body.get('filename') or ''}".strip()
    else:
        text = f"[{kind}]"
    delivery = entry.get("delivery") or {}
    state = delivery.get("state", "")
    reason = delivery.get("reason", "")
    attempts = delivery.get("attempts", 0)
    if state == "delivered":
        label = _("Sent")
    elif state == "retrying":
        label = _("Not delivered; the sandbox retries (attempt %(n)d)") % {"n": attempts}
    elif state == "failed":
        label = _("Failed after %(n)d attempts") % {"n": attempts}
    else:
        label, state = _("Sending…"), "sending"
    return Bubble(
        side="customer",
        kind=kind,
        text=text,
        at=at,
        wamid=entry.get("wamid", ""),
        state=state,
        state_label=label,
        reason=reason,
    )


def _business_bubble(entry: dict, at: datetime | None, templates: dict) -> Bubble:
    message = entry.get("message") or {}
    kind = entry.get("type") or message.get("type") or "text"
    body = message.get(kind) if isinstance(message.get(kind), dict) else {}
    result = Bubble(side="business", kind=kind, text="", at=at, wamid=entry.get("wamid", ""))
    if kind == "text":
        result.text = body.get("body", "")
    elif kind == "interactive":
        result.text = (body.get("body") or {}).get("text", "")
        header = body.get("header") or {}
        result.header = header.get("text", "") if isinstance(header, dict) else ""
        result.footer = (body.get("footer") or {}).get("text", "")
        action = body.get("action") or {}
        if body.get("type") == "button":
            result.buttons = [
                {"id": b["reply"].get("id", ""), "title": b["reply"].get("title", "")}
                for b in action.get("buttons") or []
                if isinstance(b, dict) and isinstance(b.get("reply"), dict)
            ]
        elif body.get("type") == "list":
            result.menu_button = action.get("button", "") or _("Options")
            result.sections = [
                {
                    "title": section.get("title", ""),
                    "rows": [
                        {
                            "id": row.get("id", ""),
                            "title": row.get("title", ""),
                            "description": row.get("description", ""),
                        }
                        for row in section.get("rows") or []
                        if isinstance(row, dict)
                    ],
                }
                for section in action.get("sections") or []
                if isinstance(section, dict)
            ]
        elif body.get("type") == "cta_url":
            params = action.get("parameters") or {}
            result.footer = f"{params.get('display_text', '')} → {params.get('url', '')}"
    elif kind == "template":
        result.text = _template_text(body, templates)
    elif kind in ("image", "video", "audio", "document", "sticker"):
        result.text = f"[{kind}] {body.get('caption') or body.get('filename') or ''}".strip()
    elif kind == "location":
        result.text = body.get("name") or f"📍 {body.get('latitude')}, {body.get('longitude')}"
    elif kind == "reaction":
        result.text = body.get("emoji", "")
    elif kind == "contacts":
        names = [(c.get("name") or {}).get("formatted_name", "") for c in message.get(kind) or []]
        result.text = "👤 " + ", ".join(n for n in names if n)
    else:
        result.text = f"[{kind}]"
    status = entry.get("status", "")
    result.state = status
    if status == "failed":
        error = entry.get("error") or {}
        result.state_label = _("Not received")
        result.reason = f"#{error.get('code', '')} {error.get('title', '')}".strip()
    return result


def _template_text(template: dict, templates: dict) -> str:
    """The approved body with the values it was sent with, when the template is synced; its
    name and the values otherwise."""
    values = []
    for component in template.get("components") or []:
        if str(component.get("type", "")).lower() != "body":
            continue
        for parameter in component.get("parameters") or []:
            if isinstance(parameter, dict) and parameter.get("type") == "text":
                values.append(parameter.get("text", ""))
    language = (template.get("language") or {}).get("code", "")
    for component in templates.get((template.get("name", ""), language)) or []:
        if str(component.get("type", "")).upper() == "BODY" and component.get("text"):
            text = component["text"]
            for index, value in enumerate(values, start=1):
                text = text.replace(f"{{{{{index}}}}}", value)
            return text
    name = template.get("name", "")
    return f"[{name}] " + " · ".join(values) if values else f"[{name}]"
