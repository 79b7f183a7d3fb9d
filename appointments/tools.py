"""Assistant tools (registered in ``assistants.tools``' registry) so an "AI on" chat can book in
free text: list services, find free times, book, reschedule, cancel, list my appointments.

Like every tool they act only for the chat's own contact. Times the model sends without an
offset are read in the organization's time zone; every refusal comes back as a clear
``{"error": ...}`` the model can relay (``BookingError`` is a ``ValidationError``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from appointments import availability, services
from appointments.models import Appointment, Professional, Service
from assistants.tools import ToolContext, register
from campaigns.services import normalize_keyword

MAX_SLOTS = 12


def _organization(context: ToolContext):
    if context.chat is None:
        raise ValidationError("bookings are not available in the playground")
    return context.chat.organization


def _service(organization, name: str) -> Service:
    wanted = normalize_keyword(name)
    offered = Service.objects.filter(organization=organization, active=True, bookable_online=True)
    matches = [s for s in offered if normalize_keyword(s.name) == wanted] or [
        s for s in offered if wanted and wanted in normalize_keyword(s.name)
    ]
    if len(matches) != 1:
        names = ", ".join(s.name for s in offered)
        raise ValidationError(f"unknown or ambiguous service {name!r}; offered: {names}")
    return matches[0]


def _professional(organization, name: str | None) -> Professional | None:
    if not name:
        return None
    wanted = normalize_keyword(name)
    for professional in Professional.objects.filter(organization=organization, active=True):
        if wanted in normalize_keyword(professional.name):
            return professional
    raise ValidationError(f"unknown professional {name!r}")


def _moment(organization, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise ValidationError(
            f"unreadable time {text!r}: use YYYY-MM-DDTHH:MM (clinic time)"
        ) from error
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=availability.zone(organization))
    return moment


def _local(organization, moment: datetime) -> str:
    return moment.astimezone(availability.zone(organization)).strftime("%Y-%m-%dT%H:%M")


def _describe(appointment: Appointment) -> dict:
    return {
        "appointment_id": str(appointment.code),
        "service": appointment.service.name,
        "professional": appointment.professional.name,
        "start": _local(appointment.organization, appointment.starts_at),
        "status": appointment.status,
    }


@register("list_services", "The clinic's bookable services with duration, price and description.")
def list_services(context: ToolContext, arguments: dict) -> dict:
    organization = _organization(context)
    return {
        "services": [
            {
                "name": s.name,
                "category": s.category,
                "duration_minutes": s.duration_minutes,
                "price": str(s.price) if s.price is not None else None,
                "description": s.description,
                "professionals": [p.name for p in s.professionals.filter(active=True)],
            }
            for s in Service.objects.filter(
                organization=organization, active=True, bookable_online=True
            ).prefetch_related("professionals")
        ],
        "time_zone": organization.time_zone,
    }


@register(
    "find_slots",
    "Free start times for a service (clinic time zone), optionally for one professional and "
    "from a date (YYYY-MM-DD). Offer a few to the customer, then book the one they choose.",
    {
        "service": {"type": "string"},
        "professional": {"type": "string"},
        "from_date": {"type": "string"},
    },
    required=("service",),
)
def find_slots(context: ToolContext, arguments: dict) -> dict:
    organization = _organization(context)
    service = _service(organization, str(arguments.get("service") or ""))
    professional = _professional(organization, arguments.get("professional"))
    today = timezone.now().astimezone(availability.zone(organization)).date()
    try:
        start = date.fromisoformat(arguments["from_date"]) if arguments.get("from_date") else today
    except ValueError as error:
        raise ValidationError("from_date must be YYYY-MM-DD") from error
    slots = availability.free_slots(
        service=service, professional=professional, start=start, end=start + timedelta(days=14)
    )
    names = dict(Professional.objects.filter(organization=organization).values_list("pk", "name"))
    seen, offered = set(), []
    for slot in slots:
        if slot.starts_at in seen:
            continue
        seen.add(slot.starts_at)
        offered.append(
            {
                "start": _local(organization, slot.starts_at),
                "professional": names[slot.professional_id],
            }
        )
        if len(offered) == MAX_SLOTS:
            break
    return {"service": service.name, "slots": offered, "time_zone": organization.time_zone}


def _free_professional(service: Service, professional, starts_at: datetime) -> Professional:
    if starts_at <= timezone.now():
        raise services.BookingError("that time is in the past; call find_slots for free times")
    if professional is not None:
        return professional
    day = starts_at.astimezone(availability.zone(service.organization)).date()
    for slot in availability.free_slots(service=service, start=day, end=day):
        if slot.starts_at == starts_at:
            return Professional.objects.get(pk=slot.professional_id)
    raise services.SlotTaken("that time is not free; call find_slots for free times")


@register(
    "book_appointment",
    "Book a service for the customer in this conversation at a start time returned by "
    "find_slots (YYYY-MM-DDTHH:MM, clinic time). Confirm with the customer first.",
    {
        "service": {"type": "string"},
        "start": {"type": "string"},
        "professional": {"type": "string"},
    },
    required=("service", "start"),
)
def book_appointment(context: ToolContext, arguments: dict) -> dict:
    organization = _organization(context)
    service = _service(organization, str(arguments.get("service") or ""))
    starts_at = _moment(organization, arguments.get("start", ""))
    professional = _free_professional(
        service, _professional(organization, arguments.get("professional")), starts_at
    )
    if context.dry_run:
        return {"ok": True, "dry_run": True}
    appointment = services.appointment_book(
        service=service,
        professional=professional,
        starts_at=starts_at,
        channel=Appointment.Channel.AI,
        contact=context.contact,
        chat=context.chat,
    )
    return {"ok": True, **_describe(appointment)}


def _mine(context: ToolContext, code: str) -> Appointment:
    organization = _organization(context)
    appointment = (
        Appointment.objects.select_related("service", "professional", "organization")
        .filter(organization=organization, contact=context.contact)
        .filter(Q(code__iexact=str(code).strip()) if _is_uuid(code) else Q(pk__in=[]))
        .first()
    )
    if appointment is None:
        raise ValidationError("no such appointment of this customer; call my_appointments")
    return appointment


def _is_uuid(value) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@register("my_appointments", "The customer's upcoming appointments.")
def my_appointments(context: ToolContext, arguments: dict) -> dict:
    _organization(context)
    upcoming = Appointment.objects.filter(
        contact=context.contact,
        status__in=Appointment.ACTIVE,
        starts_at__gte=timezone.now(),
    ).select_related("service", "professional", "organization")
    return {"appointments": [_describe(a) for a in upcoming[:10]]}


@register(
    "reschedule_appointment",
    "Move one of the customer's appointments to a new free start (YYYY-MM-DDTHH:MM).",
    {"appointment_id": {"type": "string"}, "start": {"type": "string"}},
    required=("appointment_id", "start"),
)
def reschedule_appointment(context: ToolContext, arguments: dict) -> dict:
    appointment = _mine(context, arguments.get("appointment_id", ""))
    starts_at = _moment(appointment.organization, arguments.get("start", ""))
    if context.dry_run:
        return {"ok": True, "dry_run": True}
    services.appointment_reschedule(appointment=appointment, starts_at=starts_at, customer=True)
    return {"ok": True, **_describe(appointment)}


@register(
    "cancel_appointment",
    "Cancel one of the customer's appointments (after they confirm).",
    {"appointment_id": {"type": "string"}},
    required=("appointment_id",),
)
def cancel_appointment(context: ToolContext, arguments: dict) -> dict:
    appointment = _mine(context, arguments.get("appointment_id", ""))
    if context.dry_run:
        return {"ok": True, "dry_run": True}
    if not services.appointment_cancel(appointment=appointment):
        raise ValidationError("that appointment is not active")
    return {"ok": True, **_describe(appointment)}
