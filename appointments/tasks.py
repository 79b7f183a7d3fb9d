"""Background work of the appointments app: tasks take ids and call services (idempotent)."""

import hashlib
import logging

from django.core.files.base import ContentFile
from django.utils import translation

from appointments import calendar_files, reminders
from appointments.models import Appointment
from inbox import services as inbox_services
from inbox.models import Chat, Media, Message
from integrations.errors import IntegrationError
from integrations.providers import provider_for

logger = logging.getLogger(__name__)


def calendar_file_send(appointment_id: int, chat_id: int) -> None:
    """Send the appointment's .ics to the customer (once: a document already sent for this
    appointment's current version is not sent again)."""
    appointment = (
        Appointment.objects.select_related("service", "professional", "organization")
        .filter(pk=appointment_id)
        .first()
    )
    chat = (
        Chat.objects.select_related("contact", "organization", "number").filter(pk=chat_id).first()
    )
    if appointment is None or chat is None or not appointment.is_active:
        return
    filename = calendar_files.filename(appointment)
    if Message.objects.filter(
        chat=chat, type=Message.Type.DOCUMENT, content__document__filename=filename
    ).exists():
        return
    with translation.override(chat.contact.language or chat.organization.language):
        text = calendar_files.appointment_ics(appointment)
    # WhatsApp accepts no text/calendar documents: the file goes as plain text named .ics,
    # which phones' calendar apps open by its extension.
    data = text.encode()
    try:
        media_id = provider_for(chat.number).upload_media(
            data=data, mime_type="text/plain", filename=filename
        )
        message = inbox_services.message_send(
            chat=chat,
            message_type="document",
            content={"id": media_id, "filename": filename},
            author_type=Message.Author.AUTOMATION,
            author_ref="booking",
        )
    except (IntegrationError, inbox_services.SendRefused) as error:
        logger.warning("Calendar file for appointment %s not sent: %s", appointment_id, error)
        return
    media = Media(
        organization_id=chat.organization_id,
        message=message,
        meta_media_id=media_id,
        mime_type="text/calendar",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename=filename,
    )
    media.file.save(filename, ContentFile(data), save=False)
    media.save()


def reminders_tick() -> int:
    """Send the reminders that are due (periodic, every minute); returns how many went out."""
    return reminders.reminders_due_send()


def visit_note_process(note_id: int) -> None:
    from appointments.visit_notes import visit_note_process as process

    process(note_id)


def waitlist_offer(appointment_id: int) -> None:
    """A cancellation freed a time: offer it to the waiting list."""
    from appointments.models import Appointment
    from appointments.waitlist import waitlist_offer as offer

    appointment = (
        Appointment.objects.select_related("service", "professional", "organization")
        .filter(pk=appointment_id, status=Appointment.Status.CANCELLED)
        .first()
    )
    if appointment is not None:
        offer(appointment=appointment)


def appointment_automations(appointment_id: int, op: str) -> int:
    """Run the automation rules of an appointment event; once per event (the run's key)."""
    from appointments.receivers import AUTOMATION_TRIGGERS
    from campaigns import automations

    appointment = Appointment.objects.filter(pk=appointment_id, contact__isnull=False).first()
    if appointment is None or op not in AUTOMATION_TRIGGERS:
        return 0
    key = f"appointment:{appointment.code}:{op}:{appointment.reschedule_count}"
    runs = automations.automations_fire(
        organization_id=appointment.organization_id,
        trigger=AUTOMATION_TRIGGERS[op][0],
        contact_id=appointment.contact_id,
        chat_id=appointment.chat_id,
        context={"appointment": str(appointment.code)},
        key=key,
    )
    return len(runs)
