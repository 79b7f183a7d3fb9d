"""Sending to a contact on behalf of an automation or a drip program: free text while the
24-hour window is open, the chosen template after it, personalised with the contact's values.

Shared by ``campaigns.automations`` and ``campaigns.drips`` (automations enrol contacts in
drips, so the two meet here rather than importing each other).
"""

import re

from django.utils.translation import gettext as _

from campaigns import services as campaign_services
from inbox import services as inbox_services
from inbox.models import Chat, Contact, Message


class ActionSkipped(Exception):
    """An action that had nothing to do, with the reason (logged, not a failure)."""


PLACEHOLDER = re.compile(r"{{\s*(name|first_name|phone|attribute:[\w.-]+)\s*}}")


def personalize(text: str, contact: Contact) -> str:
    """``{{name}}``, ``{{first_name}}``, ``{{phone}}`` and ``{{attribute:x}}`` in a text."""
    values = campaign_services.contact_values(contact)
    return PLACEHOLDER.sub(lambda m: campaign_services.contact_value(values, m.group(1)), text)


def send_text_or_template(
    *, chat: Chat, contact: Contact, text: str, template, author_ref: str, first_value: str = ""
) -> Message:
    """Text while the 24-hour window is open, else the template (its variables get the contact's
    name, or ``first_value`` for the first one); says why when neither may be sent."""
    if contact.opt_in == Contact.OptIn.OPTED_OUT:
        raise ActionSkipped(_("The contact opted out."))
    if text and chat.window_is_open:
        return inbox_services.message_send(
            chat=chat,
            message_type="text",
            content={"body": personalize(text, contact)[:4096], "preview_url": False},
            author_type=Message.Author.AUTOMATION,
            author_ref=author_ref,
        )
    if template is None:
        raise inbox_services.SendRefused(
            _("The 24-hour window is closed and no template is set, so WhatsApp allows no message.")
        )
    return inbox_services.message_send(
        chat=chat,
        message_type="template",
        content=template_content(template, contact, first_value=first_value),
        author_type=Message.Author.AUTOMATION,
        author_ref=author_ref,
    )


def template_content(template, contact: Contact, *, first_value: str = "") -> dict:
    slots = campaign_services.template_slots(template)
    variables = {
        "body": [{"source": "field", "value": "name", "fallback": "-"}] * len(slots["body"])
    }
    if first_value and slots["body"]:
        variables["body"][0] = {"source": "fixed", "value": first_value}
    variables["header"] = [{"source": "field", "value": "name", "fallback": "-"}] * len(
        slots["header"]
    )
    components = campaign_services.render_components(
        slots=slots,
        variables=variables,
        values=campaign_services.contact_values(contact),
        media_link="",
    )
    content = {"name": template.name, "language": {"code": template.language}}
    if components:
        content["components"] = components
    return content
