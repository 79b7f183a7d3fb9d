"""Appointment reminders (e.g. 24 h and 2 h before) with Confirm / Reschedule / Cancel buttons.

Rows are created when an appointment is booked or moved (from the organization's rule, or the
service's own) and are the queue: a periodic task sends the due ones. Each send claims its row
with a conditional UPDATE in the same transaction that stores the outgoing message, so a worker
killed before the commit leaves the reminder pending (sent by the next run) and one killed
after leaves it sent with its message queued: never two, never none. Opted-out contacts and
appointments no longer active are skipped, with the reason recorded.

Inside the 24-hour window the reminder is an interactive button message; outside it the
organization's approved reminder template (body variables filled in order: customer name,
service, date and time, professional; its quick-reply buttons carry the same ids).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from appointments import availability
from appointments.booking import APPOINTMENT_PREFIX, KEY
from appointments.models import Appointment, Reminder, _hours
from inbox import services as inbox_services
from inbox.models import Chat, Contact, Message
from integrations.models import MessageTemplate
from integrations.whatsapp.validation import placeholders

logger = logging.getLogger(__name__)

ACTIONS = (("confirm", "Confirm"), ("reschedule", "Reschedule"), ("cancel", "Cancel visit"))


def offsets_for(appointment: Appointment) -> list[int]:
    own = _hours(appointment.service.reminder_hours)
    if own:
        return own
    return availability.settings_for(appointment.organization).reminder_offsets()


def reminders_schedule(*, appointment: Appointment, now: datetime | None = None) -> list[Reminder]:
    """(Re)create the reminders of a booked or moved appointment; past-due ones are skipped."""
    now = now or timezone.now()
    Reminder.objects.filter(appointment=appointment).delete()
    if not appointment.is_active or appointment.contact_id is None:
        return []
    rows = []
    for hours in offsets_for(appointment):
        due_at = appointment.starts_at - timedelta(hours=hours)
        if due_at <= now:
            continue
        rows.append(
            Reminder(
                organization_id=appointment.organization_id,
                appointment=appointment,
                hours=hours,
                due_at=due_at,
            )
        )
    return Reminder.objects.bulk_create(rows)


def reminders_drop(*, appointment: Appointment) -> None:
    Reminder.objects.filter(appointment=appointment, status=Reminder.Status.PENDING).update(
        status=Reminder.Status.SKIPPED, detail="appointment " + appointment.status
    )


def due_ids(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    return list(
        Reminder.objects.filter(status=Reminder.Status.PENDING, due_at__lte=now or timezone.now())
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )


def reminders_due_send(*, now: datetime | None = None) -> int:
    """Send every due reminder; ``now`` lets tests (and catch-up runs) move the clock."""
    return sum(1 for pk in due_ids(now=now) if reminder_send(pk) is not None)


def _skip(reminder_id: int, detail: str) -> None:
    Reminder.objects.filter(pk=reminder_id).update(status=Reminder.Status.SKIPPED, detail=detail)


def reminder_send(reminder_id: int) -> Message | None:
    """Send one due reminder, exactly once (see the module docstring)."""
    with transaction.atomic():
        claimed = Reminder.objects.filter(pk=reminder_id, status=Reminder.Status.PENDING).update(
            status=Reminder.Status.SENT, sent_at=timezone.now()
        )
        if not claimed:
            return None
        reminder = Reminder.objects.select_related(
            "appointment__service",
            "appointment__professional",
            "appointment__organization",
            "appointment__contact",
        ).get(pk=reminder_id)
        appointment = reminder.appointment
        if not appointment.is_active:
            _skip(reminder_id, "appointment " + appointment.status)
            return None
        contact = appointment.contact
        if contact is None or contact.opt_in == Contact.OptIn.OPTED_OUT:
            _skip(reminder_id, "contact opted out" if contact else "no contact")
            return None
        chat = _chat_for(appointment)
        if chat is None:
            _skip(reminder_id, "no WhatsApp conversation with the contact")
            return None
        with translation.override(contact.language or appointment.organization.language):
            try:
                message = _send(chat, appointment)
            except inbox_services.SendRefused as refused:
                Reminder.objects.filter(pk=reminder_id).update(
                    status=Reminder.Status.FAILED, detail=refused.messages[0][:255]
                )
                logger.warning("Reminder %s not sent: %s", reminder_id, refused.messages[0])
                return None
        Reminder.objects.filter(pk=reminder_id).update(message=message)
        return message


def _chat_for(appointment: Appointment) -> Chat | None:
    chats = Chat.objects.select_related("contact", "organization", "number")
    if appointment.chat_id:
        chat = chats.filter(pk=appointment.chat_id).first()
        if chat is not None:
            return chat
    return (
        chats.filter(contact_id=appointment.contact_id, organization_id=appointment.organization_id)
        .order_by("-last_message_at")
        .first()
    )


def _when(appointment: Appointment) -> str:
    local = appointment.starts_at.astimezone(availability.zone(appointment.organization))
    return _("%(day)s at %(time)s") % {
        "day": formats.date_format(local, "l, d/m"),
        "time": local.strftime("%H:%M"),
    }


def reply_ids(appointment: Appointment) -> list[str]:
    return [f"{APPOINTMENT_PREFIX}{appointment.code}:{action}" for action, _label in ACTIONS]


def _send(chat: Chat, appointment: Appointment) -> Message:
    if chat.window_is_open:
        body = _("Reminder: %(service)s with %(professional)s on %(when)s. Can you make it?") % {
            "service": appointment.service.name,
            "professional": appointment.professional.name,
            "when": _when(appointment),
        }
        # Not "Cancel" alone: a tap's text "Cancelar" is a default opt-out keyword (pt-BR).
        labels = [_("Confirm"), _("Reschedule"), _("Cancel visit")]
        buttons = [
            {"type": "reply", "reply": {"id": reply_id, "title": label[:20]}}
            for reply_id, label in zip(reply_ids(appointment), labels, strict=True)
        ]
        return inbox_services.message_send(
            chat=chat,
            message_type="interactive",
            content={"type": "button", "body": {"text": body}, "action": {"buttons": buttons}},
            author_type=Message.Author.AUTOMATION,
            author_ref=KEY,
        )
    return inbox_services.message_send(
        chat=chat,
        message_type="template",
        content=_template_content(chat, appointment),
        author_type=Message.Author.AUTOMATION,
        author_ref=KEY,
    )


def _template_content(chat: Chat, appointment: Appointment) -> dict:
    name = availability.settings_for(appointment.organization).reminder_template.strip()
    if not name:
        raise inbox_services.SendRefused(
            _(
                "The 24-hour window is closed and no reminder template is set "
                "(Agenda settings › reminder template)."
            )
        )
    return template_content(
        chat=chat,
        name=name,
        values=template_values(appointment),
        payloads=reply_ids(appointment),
    )


def template_values(appointment: Appointment) -> list[str]:
    """Body parameters of the agenda's templates, in order: name, service, when, professional."""
    return [
        appointment.display_customer
        or (appointment.contact.display_name if appointment.contact_id else "-"),
        appointment.service.name,
        _when(appointment),
        appointment.professional.name,
    ]


def template_content(*, chat: Chat, name: str, values: list[str], payloads: list[str]) -> dict:
    """An approved template of the chat's number filled with ``values`` (body, in order) and
    ``payloads`` (its quick-reply buttons, in order); refused with the reason otherwise."""
    template = (
        MessageTemplate.objects.filter(number_id=chat.number_id, name=name, status="APPROVED")
        .order_by("language")
        .first()
    )
    if template is None:
        raise inbox_services.SendRefused(
            _('No approved template "%(name)s" on this number.') % {"name": name}
        )
    components = []
    for component in template.components:
        kind = str(component.get("type", "")).upper()
        if kind == "BODY":
            wanted = placeholders(component.get("text", ""))
            components.append(
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": values[i] if i < len(values) else "-"}
                        for i in range(len(wanted))
                    ],
                }
            )
        elif kind == "BUTTONS":
            quick = [
                i
                for i, button in enumerate(component.get("buttons") or [])
                if str(button.get("type", "")).upper() == "QUICK_REPLY"
            ]
            for index, payload in zip(quick, payloads, strict=False):
                components.append(
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": str(index),
                        "parameters": [{"type": "payload", "payload": payload}],
                    }
                )
    return {
        "name": template.name,
        "language": {"code": template.language},
        "components": components,
    }
