"""Functions the model may call, through one registry that later features extend.

Every tool acts only on the chat's own contact (``ToolContext``): no tool takes a contact id,
phone or email to look up, so customer text cannot steer a tool to another contact's data.
Unknown arguments are dropped. In the playground (``dry_run``) tools report what they would do.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from inbox import contacts as inbox_contacts
from inbox import services as inbox_services
from inbox.models import Chat, Contact


@dataclass
class ToolContext:
    chat: Chat | None
    contact: Contact | None
    dry_run: bool = False
    handoff_reason: str = ""
    log: list[dict] = field(default_factory=list)
    # The contact fields the assistant may see (``Assistant.contact_fields``); None: all.
    contact_fields: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    func: Callable[[ToolContext, dict], dict]

    def schema(self) -> dict:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


REGISTRY: dict[str, Tool] = {}


def register(name: str, description: str, properties: dict | None = None, required=()):
    def decorator(func):
        REGISTRY[name] = Tool(
            name,
            description,
            {
                "type": "object",
                "properties": properties or {},
                "required": list(required),
                "additionalProperties": False,
            },
            func,
        )
        _schemas.clear()
        return func

    return decorator


_schemas: list[dict] = []  # built once per process (the registry changes only at start-up)


def schemas() -> list[dict]:
    """The tools' JSON schemas for the model (shared: callers must not change them)."""
    if len(_schemas) != len(REGISTRY):
        _schemas[:] = [tool.schema() for tool in REGISTRY.values()]
    return _schemas


def execute(context: ToolContext, name: str, arguments: dict) -> dict:
    """Run one call; errors come back as data for the model, never as exceptions."""
    tool = REGISTRY.get(name)
    if tool is None:
        result = {"error": f"unknown tool {name}"}
    else:
        allowed = set(tool.parameters["properties"])
        clean = {k: v for k, v in (arguments or {}).items() if k in allowed}
        try:
            result = tool.func(context, clean)
        except ValidationError as error:
            result = {"error": "; ".join(error.messages)}
    context.log.append({"name": name, "arguments": arguments, "result": result})
    return result


def contact_facts(context: ToolContext) -> dict:
    """The facts about the chat's contact the assistant is allowed to see."""
    facts = _contact_facts(context.contact)
    if context.contact_fields is None:
        return facts
    return {key: value for key, value in facts.items() if key in context.contact_fields}


def _contact_facts(contact: Contact) -> dict:
    return {
        "name": contact.display_name,
        "phone": contact.phone,
        "email": contact.email,
        "tags": contact.tags,
        "attributes": contact.attributes,
        "language": contact.language,
    }


@register("lookup_contact", "Facts about the customer in this conversation (only them).")
def lookup_contact(context: ToolContext, arguments: dict) -> dict:
    if context.contact is None:
        return {"error": "no customer in the playground"}
    return contact_facts(context)


@register(
    "add_tag",
    "Tag the customer in this conversation, e.g. 'interested-implant'.",
    {"tag": {"type": "string"}},
    required=("tag",),
)
def add_tag(context: ToolContext, arguments: dict) -> dict:
    tag = str(arguments.get("tag", "")).strip().lower()[:40]
    if not tag:
        raise ValidationError("empty tag")
    if context.dry_run or context.contact is None:
        return {"ok": True, "dry_run": True, "tag": tag}
    with transaction.atomic():
        inbox_contacts.contact_update(
            contact=context.contact, data={"tags_add": [tag]}, source="assistant"
        )
        if context.chat is not None and tag not in context.chat.tags:
            inbox_services.chat_set_tags(chat=context.chat, tags=[*context.chat.tags, tag])
    return {"ok": True, "tag": tag}


@register(
    "set_contact",
    "Save what the customer in this conversation told you about themselves.",
    {
        "name": {"type": "string"},
        "email": {"type": "string"},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
    },
)
def set_contact(context: ToolContext, arguments: dict) -> dict:
    changes: dict[str, Any] = {}
    if arguments.get("name"):
        changes["name"] = str(arguments["name"]).strip()[:255]
    if arguments.get("email"):
        email = str(arguments["email"]).strip()
        validate_email(email)
        changes["email"] = email
    attributes = arguments.get("attributes")
    if isinstance(attributes, dict):
        changes["attributes"] = {
            str(k)[:60]: str(v)[:500] for k, v in list(attributes.items())[:20]
        }
    if not changes:
        raise ValidationError("nothing to save")
    if context.dry_run or context.contact is None:
        return {"ok": True, "dry_run": True, "saved": sorted(changes)}
    saved = sorted(changes)
    if "attributes" in changes:  # what the customer says adds to what we know
        changes["attributes_merge"] = changes.pop("attributes")
    inbox_contacts.contact_update(contact=context.contact, data=changes, source="assistant")
    return {"ok": True, "saved": saved}


@register(
    "handoff",
    "Hand the conversation to a person on the team (customer asks for one, you are unsure, "
    "or the topic is sensitive).",
    {"reason": {"type": "string"}},
)
def handoff(context: ToolContext, arguments: dict) -> dict:
    context.handoff_reason = str(arguments.get("reason") or "requested by the assistant")[:200]
    return {"ok": True}
