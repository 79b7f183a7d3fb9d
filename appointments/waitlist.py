"""The waiting list: a customer who finds no day that suits them joins it from the booking menu;
when an appointment of that service is cancelled, the freed time is offered (interactive
buttons inside the 24-hour window, the organization's approved waiting-list template outside it) to the first few waiting customers whose dates include it.
The first to tap books it through the same booking service; the others hear it was taken."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from appointments import availability, services
from appointments.models import Appointment, Professional, WaitlistEntry
from inbox import services as inbox_services
from inbox.models import Contact

logger = logging.getLogger(__name__)

PREFIX = "wait:"
OFFERS_PER_SLOT = 3
WAIT_DAYS = 14


def waitlist_join(*, chat, service) -> WaitlistEntry:
    today = timezone.now().astimezone(availability.zone(chat.organization)).date()
    entry, _created = WaitlistEntry.objects.update_or_create(
        contact=chat.contact,
        service=service,
        status=WaitlistEntry.Status.WAITING,
        defaults={
            "organization_id": chat.organization_id,
            "chat": chat,
            "wanted_from": today,
            "wanted_until": today + timedelta(days=WAIT_DAYS),
        },
    )
    return entry


def waitlist_offer(*, appointment: Appointment) -> int:
    """Offer the time ``appointment`` freed to the waiting customers; returns how many."""
    from appointments import booking

    tz = availability.zone(appointment.organization)
    day = appointment.starts_at.astimezone(tz).date()
    try:
        services.booking_check(
            service=appointment.service,
            professional=appointment.professional,
            starts_at=appointment.starts_at,
            customer=True,
        )
    except services.BookingError:
        return 0  # not bookable by a customer any more (too soon, taken again)
    WaitlistEntry.objects.filter(
        status=WaitlistEntry.Status.WAITING, wanted_until__lt=timezone.now().date()
    ).update(status=WaitlistEntry.Status.EXPIRED)
    entries = (
        WaitlistEntry.objects.filter(
            service=appointment.service,
            status=WaitlistEntry.Status.WAITING,
            wanted_from__lte=day,
            wanted_until__gte=day,
        )
        .exclude(contact_id=appointment.contact_id)
        .select_related("chat__contact", "chat__organization", "service")[:OFFERS_PER_SLOT]
    )
    offered = 0
    for entry in entries:
        chat = entry.chat
        if chat.contact.opt_in == Contact.OptIn.OPTED_OUT:
            logger.info("Waiting-list offer not sent to chat %s: the contact opted out", chat.pk)
            continue
        if not chat.window_is_open:
            sent = _offer_by_template(entry, appointment)
            if sent is not None:
                WaitlistEntry.objects.filter(pk=entry.pk).update(offers=entry.offers + 1)
                offered += 1
            continue
        with translation.override(booking._language(chat)):
            body = _(
                "A time just freed up: %(service)s with %(professional)s on %(when)s. Do you want it?"
            ) % {
                "service": appointment.service.name,
                "professional": appointment.professional.name,
                "when": booking._when_text(chat.organization, appointment.starts_at),
            }
            book_id, no_id = offer_ids(entry, appointment)
            buttons = [(book_id, _("Book it")), (no_id, _("No, thanks"))]
            sent = booking._send(
                chat,
                "interactive",
                {
                    "type": "button",
                    "body": {"text": body[:1024]},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": bid, "title": title[:20]}}
                            for bid, title in buttons
                        ]
                    },
                },
            )
        if sent is not None:
            WaitlistEntry.objects.filter(pk=entry.pk).update(offers=entry.offers + 1)
            offered += 1
    return offered


def offer_ids(entry: WaitlistEntry, appointment: Appointment) -> tuple[str, str]:
    """The two reply ids of an offer: book this time, or leave the list."""
    stamp = int(appointment.starts_at.timestamp())
    return (
        f"{PREFIX}{entry.code}:{appointment.professional_id}:{stamp}",
        f"{PREFIX}{entry.code}:no",
    )


def _offer_by_template(entry: WaitlistEntry, appointment: Appointment):
    """Outside the 24-hour window only an approved template may go out (like reminders): the
    organization's waiting-list template with the offer's buttons as quick-reply payloads.
    Without one the customer is not written to, and the log says why."""
    from appointments import booking, reminders

    chat = entry.chat
    name = availability.settings_for(appointment.organization).waitlist_template.strip()
    if not name:
        logger.info(
            "Waiting-list offer not sent to chat %s: the 24-hour window is closed and no "
            "waiting-list template is set (Agenda settings)",
            chat.pk,
        )
        return None
    with translation.override(booking._language(chat)):
        values = [
            chat.contact.display_name,
            appointment.service.name,
            booking._when_text(chat.organization, appointment.starts_at),
            appointment.professional.name,
        ]
        try:
            content = reminders.template_content(
                chat=chat, name=name, values=values, payloads=list(offer_ids(entry, appointment))
            )
        except inbox_services.SendRefused as refused:
            logger.warning(
                "Waiting-list offer not sent to chat %s: %s", chat.pk, refused.messages[0]
            )
            return None
        return booking._send(chat, "template", content)


def offer_reply(chat, choice: str) -> None:
    """A tap on a waiting-list offer: book it (if still free) or leave the list."""
    from appointments import booking

    code, _sep, rest = choice.removeprefix(PREFIX).partition(":")
    entry = (
        WaitlistEntry.objects.select_related("service")
        .filter(
            organization_id=chat.organization_id,
            contact_id=chat.contact_id,
            code=booking._uuid(code),
        )
        .first()
        if booking._uuid(code)
        else None
    )
    if entry is None or entry.status != WaitlistEntry.Status.WAITING:
        booking._send(
            chat, "text", {"body": _("That offer is no longer valid. Write “agendar” to book.")}
        )
        return
    if rest == "no":
        WaitlistEntry.objects.filter(pk=entry.pk).update(status=WaitlistEntry.Status.EXPIRED)
        booking._send(chat, "text", {"body": _("All right, you are off the waiting list.")})
        return
    professional_id, _sep, stamp = rest.partition(":")
    professional = Professional.objects.filter(
        organization_id=chat.organization_id, pk=booking._int(professional_id)
    ).first()
    if professional is None or not stamp.isdigit():
        booking._send(chat, "text", {"body": _("Sorry, I did not understand that.")})
        return
    from datetime import UTC, datetime

    try:
        appointment = services.appointment_book(
            service=entry.service,
            professional=professional,
            starts_at=datetime.fromtimestamp(int(stamp), tz=UTC),
            channel=Appointment.Channel.BOT,
            contact=chat.contact,
            chat=chat,
        )
    except services.BookingError as error:
        booking._send(
            chat,
            "text",
            {"body": error.messages[0] + " " + _("You are still on the waiting list.")},
        )
        return
    WaitlistEntry.objects.filter(pk=entry.pk).update(status=WaitlistEntry.Status.BOOKED)
    booking.confirmation_send(appointment=appointment, chat=chat)
