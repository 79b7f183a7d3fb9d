"""Booking over WhatsApp: the router handler "booking" (order 50) and its list menus.

A keyword ("agendar", "marcar"...), a tap on one of our menus, or a tap on a reminder's buttons
(``appt:<code>:confirm|reschedule|cancel``) reaches this handler; while a booking is in progress
the chat is held for it (30 minutes), so the customer's answers come here before the assistant.
Where the customer is lives in one ``BookingSession`` row per chat. Menus respect WhatsApp's
limits (10 list rows, 24-character row titles, 3 buttons of 20 characters). Anything unexpected
gets a polite re-ask; "desistir" (or "cancelar"/"sair" when the organization has not made them
opt-out keywords, as the default list does: opting out is checked first, order 10) leaves.

``start(chat)`` is the entry other apps (a flow's "book" step) call.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from appointments import availability, services
from appointments.models import AgendaSettings, Appointment, BookingSession, Professional, Service
from campaigns.services import keyword_set, normalize_keyword
from inbox import router
from inbox import services as inbox_services
from inbox.models import Chat, Message
from kernel import tasks
from kernel.memo import ProcessMemo

logger = logging.getLogger(__name__)

KEY = "booking"
PREFIX = "book:"
APPOINTMENT_PREFIX = "appt:"
SESSION_MINUTES = 30
EXIT_WORDS = {"cancelar", "sair", "cancel", "exit", "desistir", "salir"}
ROWS = 10
WAIT_PREFIX = "wait:"  # waiting-list offers (appointments.waitlist)

_keywords = ProcessMemo()


def keywords_of(organization_id: int) -> set[str]:
    """The words that start a booking (none when nothing can be booked online); memoized."""

    def load():
        if not Service.objects.filter(
            organization_id=organization_id, active=True, bookable_online=True
        ).exists():
            return set()
        agenda = AgendaSettings.objects.filter(organization_id=organization_id).first()
        return keyword_set(agenda.keywords if agenda else AgendaSettings().keywords)

    return _keywords.get(organization_id, load)


def keywords_changed(organization_id: int) -> None:
    _keywords.forget(organization_id)


def reply_id(message: Message) -> str:
    """The id of a tapped list row or button (interactive), or a template button's payload."""
    content = message.content or {}
    if message.type == Message.Type.INTERACTIVE:
        interactive = content.get("interactive") or {}
        choice = interactive.get(interactive.get("type") or "") or {}
        return str(choice.get("id") or "") if isinstance(choice, dict) else ""
    if message.type == Message.Type.BUTTON:
        return str((content.get("button") or {}).get("payload") or "")
    return ""


# --- Router handler ----------------------------------------------------------------------------


def accepts(inbound: router.Inbound) -> bool:
    message = inbound.message
    if message.direction != Message.Direction.INBOUND:
        return False
    if inbound.held_by == KEY:
        return True
    choice = reply_id(message)
    if choice.startswith((PREFIX, APPOINTMENT_PREFIX, WAIT_PREFIX)):
        return True
    return bool(
        message.type == Message.Type.TEXT
        and message.text
        and normalize_keyword(message.text) in keywords_of(message.organization_id)
    )


def handle(inbound: router.Inbound) -> None:
    chat = inbound.chat
    with translation.override(_language(chat)):
        _handle(chat, inbound.message)


def _language(chat: Chat) -> str:
    return chat.contact.language or chat.organization.language or "pt-br"


def _handle(chat: Chat, message: Message) -> None:
    choice = reply_id(message)
    if choice.startswith(APPOINTMENT_PREFIX):
        _appointment_reply(chat, choice)
        return
    if choice.startswith(WAIT_PREFIX):
        from appointments import waitlist

        waitlist.offer_reply(chat, choice)
        return
    session = (
        BookingSession.objects.select_related("service", "professional", "rescheduling")
        .filter(chat=chat, expires_at__gt=timezone.now())
        .first()
    )
    if session is None:
        intro = _("That menu has expired; let's start again.") if choice else ""
        start(chat, intro=intro)
        return
    if not choice:
        word = normalize_keyword(message.text)
        if word in EXIT_WORDS:
            _finish(chat, _("Booking cancelled. Write “agendar” whenever you want to book."))
        elif word in keywords_of(chat.organization_id):
            start(chat)
        else:
            _ask_again(chat, session)
        return
    _choose(chat, session, choice.removeprefix(PREFIX))


def _choose(chat: Chat, session: BookingSession, choice: str) -> None:
    kind, _sep, value = choice.partition(":")
    if kind == "svc":
        service = _services(chat.organization_id).filter(code=_uuid(value)).first()
        if service is None:
            _send_services(chat, session, _("That service is no longer available."))
            return
        _save(session, step=BookingSession.Step.DAY, service=service)
        _send_days(chat, session)
    elif session.service is None:
        _send_services(chat, session, "")
    elif kind == "day" and _date(value):
        _save(session, step=BookingSession.Step.TIME, day=_date(value))
        _send_times(chat, session)
    elif kind == "more" and _date(value.split(":")[0]):
        day, _sep, offset = value.partition(":")
        _save(session, step=BookingSession.Step.TIME, day=_date(day))
        _send_times(chat, session, offset=int(offset) if offset.isdigit() else 0)
    elif kind == "days":
        _save(session, step=BookingSession.Step.DAY)
        _send_days(chat, session)
    elif kind == "slot":
        professional_id, _sep, stamp = value.partition(":")
        professional = Professional.objects.filter(
            organization_id=chat.organization_id, pk=_int(professional_id), active=True
        ).first()
        if professional is None or not stamp.isdigit():
            _ask_again(chat, session)
            return
        starts_at = datetime.fromtimestamp(int(stamp), tz=UTC)
        _save(
            session,
            step=BookingSession.Step.CONFIRM,
            professional=professional,
            starts_at=starts_at,
        )
        _send_confirm(chat, session)
    elif kind == "yes" and session.step == BookingSession.Step.CONFIRM:
        _book(chat, session)
    elif kind == "wait":
        from appointments import waitlist

        waitlist.waitlist_join(chat=chat, service=session.service)
        _finish(
            chat,
            _("You are on the waiting list for “%(service)s”: I will write when a time frees up.")
            % {"service": session.service.name},
        )
    elif kind == "no":
        _finish(chat, _("Booking cancelled. Write “agendar” whenever you want to book."))
    else:
        _ask_again(chat, session)


def _uuid(value: str):
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# --- Steps --------------------------------------------------------------------------------------


def start(
    chat: Chat,
    *,
    service: Service | None = None,
    rescheduling: Appointment | None = None,
    intro: str = "",
) -> BookingSession:
    """Begin (or restart) a booking in ``chat``: hold the chat and send the first menu."""
    until = timezone.now() + timedelta(minutes=SESSION_MINUTES)
    session, _created = BookingSession.objects.update_or_create(
        chat=chat,
        defaults={
            "organization_id": chat.organization_id,
            "step": BookingSession.Step.DAY if service else BookingSession.Step.SERVICE,
            "service": service,
            "day": None,
            "professional": None,
            "starts_at": None,
            "rescheduling": rescheduling,
            "expires_at": until,
        },
    )
    router.chat_hold(chat=chat, by=KEY, until=until)
    with translation.override(_language(chat)):
        if service is not None:
            _send_days(chat, session, intro)
        else:
            _send_services(chat, session, intro)
    return session


def _save(session: BookingSession, **fields) -> None:
    for name, value in fields.items():
        setattr(session, name, value)
    session.expires_at = timezone.now() + timedelta(minutes=SESSION_MINUTES)
    session.save()
    router.chat_hold(chat=session.chat, by=KEY, until=session.expires_at)


def _finish(chat: Chat, text: str) -> None:
    BookingSession.objects.filter(chat=chat).delete()
    router.chat_release(chat=chat, by=KEY)
    if text:
        _send(chat, "text", {"body": text})


def _services(organization_id: int):
    return (
        Service.objects.filter(
            organization_id=organization_id,
            active=True,
            bookable_online=True,
            professionals__active=True,
        )
        .distinct()
        .order_by("category", "name")
    )


def _send_services(chat: Chat, session: BookingSession, intro: str) -> None:
    offered = list(_services(chat.organization_id)[:ROWS])
    if not offered:
        _finish(
            chat, _("Sorry, nothing can be booked over WhatsApp right now. A person will help you.")
        )
        return
    if session.step != BookingSession.Step.SERVICE:
        _save(session, step=BookingSession.Step.SERVICE)
    rows = [
        {
            "id": f"{PREFIX}svc:{service.code}",
            "title": _clip(service.name, 24),
            "description": _clip(_service_line(service), 72),
        }
        for service in offered
    ]
    body = "\n\n".join(filter(None, [intro, _("Which service would you like to book?")]))
    _send_list(chat, body, _("Services"), rows)


def _service_line(service: Service) -> str:
    parts = [_("%(minutes)d min") % {"minutes": service.duration_minutes}]
    if service.price is not None:
        parts.append(formats.number_format(service.price, 2, use_l10n=True))
    if service.description:
        parts.append(service.description)
    return " · ".join(parts)


def _free_by_day(session: BookingSession) -> OrderedDict:
    tz = availability.zone(session.chat.organization)
    today = timezone.now().astimezone(tz).date()
    agenda = availability.settings_for(session.chat.organization)
    slots = availability.free_slots(
        service=session.service,
        start=today,
        end=today + timedelta(days=agenda.horizon_days),
        exclude_appointment_id=session.rescheduling_id,
    )
    by_day: OrderedDict = OrderedDict()
    for slot in slots:
        by_day.setdefault(slot.starts_at.astimezone(tz).date(), []).append(slot)
    return by_day


def _send_days(chat: Chat, session: BookingSession, intro: str = "") -> None:
    by_day = _free_by_day(session)
    if not by_day:
        _send(
            chat,
            "text",
            {
                "body": _("Sorry, there are no free times for “%(service)s” at the moment.")
                % {"service": session.service.name}
            },  # fmt: skip
        )
        _send_services(chat, session, "")
        return
    rows = []
    for day, slots in list(by_day.items())[: ROWS - 1]:
        times = len({slot.starts_at for slot in slots})
        rows.append(
            {
                "id": f"{PREFIX}day:{day.isoformat()}",
                "title": _clip(formats.date_format(day, "D, d/m"), 24),
                "description": _clip(
                    translation.ngettext("%(n)d time free", "%(n)d times free", times)
                    % {"n": times},
                    72,
                ),
            }
        )
    rows.append(
        {
            "id": f"{PREFIX}wait",
            "title": _("None suits me"),
            "description": _("Join the waiting list: I will write when a time frees up."),
        }
    )
    body = _("Which day suits you for “%(service)s”?") % {"service": session.service.name}
    if intro:
        body = f"{intro}\n\n{body}"
    _send_list(chat, body, _("Days"), rows)


def _send_times(chat: Chat, session: BookingSession, *, offset: int = 0, intro: str = "") -> None:
    tz = availability.zone(chat.organization)
    slots = availability.free_slots(
        service=session.service,
        start=session.day,
        end=session.day,
        exclude_appointment_id=session.rescheduling_id,
    )
    unique = list(OrderedDict((slot.starts_at, slot) for slot in reversed(slots)).values())
    unique.sort(key=lambda slot: slot.starts_at)  # one row per time (the first professional)
    if not unique:
        _send_days(chat, session, _("That day has just filled up. Please choose another one."))
        return
    page = unique[offset:]
    more = len(page) > ROWS
    page = page[: ROWS - 1] if more else page
    names = dict(
        Professional.objects.filter(pk__in={s.professional_id for s in page}).values_list(
            "pk", "name"
        )
    )
    rows = [
        {
            "id": f"{PREFIX}slot:{slot.professional_id}:{int(slot.starts_at.timestamp())}",
            "title": slot.starts_at.astimezone(tz).strftime("%H:%M"),
            "description": _clip(names.get(slot.professional_id, ""), 72),
        }
        for slot in page
    ]
    if more:
        rows.append(
            {
                "id": f"{PREFIX}more:{session.day.isoformat()}:{offset + ROWS - 1}",
                "title": _("Later times"),
            }
        )
    body = _("Which time on %(day)s?") % {"day": formats.date_format(session.day, "l, d/m")}
    body += _zone_note(chat)
    if intro:
        body = f"{intro}\n\n{body}"
    _send_list(chat, body, _("Times"), rows)


def _zone_note(chat: Chat) -> str:
    """Times are the clinic's; say so when the customer is known to live in another zone."""
    clinic = chat.organization.time_zone or "UTC"
    theirs = chat.contact.time_zone
    if not theirs or theirs == clinic:
        return ""
    try:
        other = ZoneInfo(theirs)
    except (ZoneInfoNotFoundError, ValueError):
        return ""
    now = timezone.now()
    if now.astimezone(other).utcoffset() == now.astimezone(ZoneInfo(clinic)).utcoffset():
        return ""
    return " " + _("(Times are the clinic's, %(zone)s; it is now %(time)s there.)") % {
        "zone": clinic,
        "time": now.astimezone(ZoneInfo(clinic)).strftime("%H:%M"),
    }


def _when_text(organization, when: datetime) -> str:
    local = when.astimezone(availability.zone(organization))
    return _("%(day)s at %(time)s") % {
        "day": formats.date_format(local, "l, d/m/Y"),
        "time": local.strftime("%H:%M"),
    }


def _send_confirm(chat: Chat, session: BookingSession) -> None:
    body = _("%(service)s with %(professional)s on %(when)s. Shall I book it?") % {
        "service": session.service.name,
        "professional": session.professional.name,
        "when": _when_text(chat.organization, session.starts_at),
    }
    buttons = [
        (f"{PREFIX}yes", _("Confirm")),
        (
            f"{PREFIX}day:{session.day.isoformat()}" if session.day else f"{PREFIX}days",
            _("Another time"),
        ),
        (f"{PREFIX}no", _("Not now")),  # not "Cancelar": an opt-out keyword
    ]
    _send(
        chat,
        "interactive",
        {
            "type": "button",
            "body": {"text": body[:1024]},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": bid, "title": _clip(title, 20)}}
                    for bid, title in buttons
                ]
            },
        },
    )


def _book(chat: Chat, session: BookingSession) -> None:
    try:
        if session.rescheduling_id:
            appointment = services.appointment_reschedule(
                appointment=session.rescheduling,
                starts_at=session.starts_at,
                professional=session.professional,
                customer=True,
            )
        else:
            appointment = services.appointment_book(
                service=session.service,
                professional=session.professional,
                starts_at=session.starts_at,
                channel=Appointment.Channel.BOT,
                contact=chat.contact,
                chat=chat,
            )
    except services.BookingError as error:
        _save(session, step=BookingSession.Step.TIME)
        _send_times(chat, session, intro=error.messages[0])
        return
    _finish(chat, "")
    confirmation_send(appointment=appointment, chat=chat)


def confirmation_text(appointment: Appointment) -> str:
    organization = appointment.organization
    agenda = availability.settings_for(organization)
    lines = [
        _("✅ Booked: %(service)s with %(professional)s.")
        % {"service": appointment.service.name, "professional": appointment.professional.name},
        "📅 " + _when_text(organization, appointment.starts_at),
    ]
    if agenda.address:
        lines.append("📍 " + agenda.address)
    lines.append(_("Need to change it? Write “agendar” or answer the reminder."))
    return "\n".join(lines)


def confirmation_send(*, appointment: Appointment, chat: Chat) -> None:
    """The confirmation text now, the calendar file (.ics) from a task after commit."""
    with translation.override(_language(chat)):
        _send(chat, "text", {"body": confirmation_text(appointment)})
    tasks.enqueue("appointments.tasks.calendar_file_send", appointment.pk, chat.pk)


def _appointment_reply(chat: Chat, choice: str) -> None:
    """A tap on a reminder's Confirm / Reschedule / Cancel."""
    _prefix, code, action = (choice.split(":") + ["", ""])[:3]
    appointment = (
        Appointment.objects.select_related("service", "professional", "organization")
        .filter(organization_id=chat.organization_id, contact_id=chat.contact_id, code=_uuid(code))
        .first()
        if _uuid(code)
        else None
    )
    if appointment is None:
        _send(
            chat, "text", {"body": _("I could not find that appointment. A person will help you.")}
        )
        return
    if not appointment.is_active:
        _send(
            chat,
            "text",
            {"body": _("That appointment is no longer active. Write “agendar” to book again.")},
        )
        return
    if action == "confirm":
        services.appointment_confirm(appointment=appointment)
        _send(chat, "text", {"body": _("Thank you! Your appointment on %(when)s is confirmed.")
                             % {"when": _when_text(chat.organization, appointment.starts_at)}})  # fmt: skip
    elif action == "cancel":
        services.appointment_cancel(appointment=appointment)
        _send(chat, "text", {"body": _("Your appointment on %(when)s is cancelled. Write “agendar” to book again.")
                             % {"when": _when_text(chat.organization, appointment.starts_at)}})  # fmt: skip
    elif action == "reschedule":
        start(
            chat,
            service=appointment.service,
            rescheduling=appointment,
            intro=_("Let's find a new time for your %(service)s.")
            % {"service": appointment.service.name},
        )
    else:
        _send(chat, "text", {"body": _("Sorry, I did not understand that.")})


def _ask_again(chat: Chat, session: BookingSession) -> None:
    intro = _("Sorry, please choose one of the options below (or write “desistir” to stop).")
    if session.step == BookingSession.Step.SERVICE or session.service is None:
        _send_services(chat, session, intro)
    elif session.step == BookingSession.Step.DAY or session.day is None:
        _send_days(chat, session, intro)
    elif session.step == BookingSession.Step.TIME or session.starts_at is None:
        _send_times(chat, session, intro=intro)
    else:
        _send(chat, "text", {"body": intro})
        _send_confirm(chat, session)


# --- Sending ------------------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    text = str(text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _send_list(chat: Chat, body: str, button: str, rows: list[dict]) -> None:
    _send(
        chat,
        "interactive",
        {
            "type": "list",
            "body": {"text": body[:1024]},
            "action": {
                "button": _clip(button, 20),
                "sections": [{"title": _clip(button, 24), "rows": rows[:ROWS]}],
            },
        },
    )


def _send(chat: Chat, message_type: str, content: dict) -> Message | None:
    try:
        return inbox_services.message_send(
            chat=chat,
            message_type=message_type,
            content=content,
            author_type=Message.Author.AUTOMATION,
            author_ref=KEY,
        )
    except inbox_services.SendRefused as refused:
        logger.warning("Booking message to chat %s refused: %s", chat.pk, refused.messages[0])
        return None
