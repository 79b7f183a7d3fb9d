"""Booking operations: book, reschedule, cancel, confirm, no-show. Every channel (WhatsApp menus,
assistant tools, staff calendar, API) goes through these, so every rule and every error message
is the same everywhere and a refused booking never leaves a half-saved row.

No double booking: on PostgreSQL the exclusion constraint ``appointment_no_overlap`` rejects a
second active appointment over the same span of a professional's agenda, whatever runs at
once; elsewhere (SQLite) the write begins by updating the professional's row, so concurrent
bookers queue and the overlap re-check inside the transaction sees the winner's row.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from appointments import availability, signals
from appointments.models import Appointment, Professional, Room, Service

logger = logging.getLogger(__name__)


class BookingError(ValidationError):
    """A booking refused for a reason the person booking can act on (shown as is)."""


class SlotTaken(BookingError):
    pass


def _span(service: Service, starts_at: datetime) -> tuple[datetime, datetime, datetime, datetime]:
    ends_at = starts_at + timedelta(minutes=service.duration_minutes)
    return (
        starts_at,
        ends_at,
        starts_at - timedelta(minutes=service.buffer_before_minutes),
        ends_at + timedelta(minutes=service.buffer_after_minutes),
    )


def _local_text(organization, when: datetime) -> str:
    local = when.astimezone(availability.zone(organization))
    return formats.date_format(local, "d/m/Y H:i")


def booking_check(
    *,
    service: Service,
    professional: Professional,
    starts_at: datetime,
    customer: bool,
    now: datetime | None = None,
    exclude_appointment_id: int | None = None,
) -> None:
    """Raise ``BookingError`` with the reason when ``service`` cannot start at ``starts_at``
    with ``professional``. ``customer``: the minimum notice, horizon and "bookable online"
    apply (staff may book at short notice and any service)."""
    now = now or timezone.now()
    if starts_at is None or timezone.is_naive(starts_at):
        raise BookingError(_("The time has no time zone: send it with its UTC offset."))
    if service.organization_id != professional.organization_id:
        raise BookingError(_("That professional does not work here."))
    if not service.active:
        raise BookingError(_("“%(service)s” is not offered any more.") % {"service": service.name})
    if not professional.active:
        raise BookingError(_("%(name)s is not taking appointments.") % {"name": professional.name})
    if not service.professionals.filter(pk=professional.pk).exists():
        raise BookingError(
            _("%(name)s does not perform “%(service)s”.")
            % {"name": professional.name, "service": service.name}
        )
    if starts_at < now:
        raise BookingError(_("That time is in the past."))
    agenda = availability.settings_for(service.organization)
    if customer:
        if not service.bookable_online:
            raise BookingError(
                _("“%(service)s” is booked with the team only.") % {"service": service.name}
            )
        if starts_at < now + timedelta(minutes=agenda.min_notice_minutes):
            raise BookingError(
                _("Appointments must be booked at least %(minutes)d minutes ahead.")
                % {"minutes": agenda.min_notice_minutes}
            )
        if starts_at > now + timedelta(days=agenda.horizon_days):
            raise BookingError(
                _("Appointments can be booked up to %(days)d days ahead.")
                % {"days": agenda.horizon_days}
            )
    begin, end, block_from, block_until = _span(service, starts_at)
    tz = availability.zone(service.organization)
    day = begin.astimezone(tz).date()
    periods = availability.working_periods(
        organization=service.organization,
        professional_ids=[professional.pk],
        start=day - timedelta(days=1),
        end=day + timedelta(days=1),
    )[professional.pk]
    if not any(p_from <= begin and end <= p_until for p_from, p_until in periods):
        raise BookingError(
            _("%(name)s is not working at %(when)s.")
            % {"name": professional.name, "when": _local_text(service.organization, begin)}
        )
    if _overlapping(professional.pk, block_from, block_until, exclude_appointment_id).exists():
        raise SlotTaken(_("That time was just taken. Please choose another one."))
    if (
        professional.room_id
        and _room_overlapping(
            professional.room_id, block_from, block_until, exclude_appointment_id
        ).exists()
    ):
        raise SlotTaken(
            _("%(room)s is in use at that time. Please choose another one.")
            % {"room": professional.room.name}
        )


def _overlapping(professional_id: int, block_from, block_until, exclude_id=None):
    rows = Appointment.objects.filter(
        professional_id=professional_id,
        status__in=Appointment.ACTIVE,
        blocked_from__lt=block_until,
        blocked_until__gt=block_from,
    )
    return rows.exclude(pk=exclude_id) if exclude_id else rows


def _room_overlapping(room_id: int, block_from, block_until, exclude_id=None):
    rows = Appointment.objects.filter(
        room_id=room_id,
        status__in=Appointment.ACTIVE,
        blocked_from__lt=block_until,
        blocked_until__gt=block_from,
    )
    return rows.exclude(pk=exclude_id) if exclude_id else rows


def _serialised_write(
    professional_id: int, block_from, block_until, write, exclude_id=None, room_id=None
):
    """Run ``write()`` so that two bookings of one span (of a professional, or of a room) can
    never both land."""
    try:
        with transaction.atomic():
            if connection.vendor != "postgresql":
                # SQLite has no exclusion constraints: queue writers on the professional's row
                # (and the room's).
                Professional.objects.filter(pk=professional_id).update(
                    lock_version=F("lock_version") + 1
                )
                if room_id:
                    Room.objects.filter(pk=room_id).update(lock_version=F("lock_version") + 1)
            taken = _overlapping(professional_id, block_from, block_until, exclude_id).exists()
            if not taken and room_id:
                taken = _room_overlapping(room_id, block_from, block_until, exclude_id).exists()
            if taken:
                raise SlotTaken(_("That time was just taken. Please choose another one."))
            return write()
    except IntegrityError as error:
        logger.info("Booking refused by the database: %s", error)
        raise SlotTaken(_("That time was just taken. Please choose another one.")) from error


def appointment_book(
    *,
    service: Service,
    professional: Professional,
    starts_at: datetime,
    channel: str,
    contact=None,
    chat=None,
    customer_name: str = "",
    notes: str = "",
    created_by=None,
    now: datetime | None = None,
) -> Appointment:
    """Book ``service`` with ``professional`` at ``starts_at`` (aware). Raises ``BookingError``."""
    customer = channel != Appointment.Channel.STAFF
    booking_check(
        service=service, professional=professional, starts_at=starts_at, customer=customer, now=now
    )
    if contact is not None and contact.organization_id != service.organization_id:
        raise BookingError(_("That contact is not one of yours."))
    begin, end, block_from, block_until = _span(service, starts_at)

    def write():
        from appointments.reminders import reminders_schedule

        appointment = Appointment.objects.create(
            organization_id=service.organization_id,
            professional=professional,
            room_id=professional.room_id,
            service=service,
            contact=contact,
            chat=chat,
            customer_name=(customer_name or (contact.display_name if contact else ""))[:255],
            starts_at=begin,
            ends_at=end,
            blocked_from=block_from,
            blocked_until=block_until,
            channel=channel,
            notes=notes,
            created_by=created_by,
        )
        reminders_schedule(appointment=appointment, now=now)
        return appointment

    appointment = _serialised_write(
        professional.pk, block_from, block_until, write, room_id=professional.room_id
    )
    signals.changed(appointment, "created")
    return appointment


def appointment_reschedule(
    *,
    appointment: Appointment,
    starts_at: datetime,
    professional: Professional | None = None,
    customer: bool = False,
    actor=None,
    now: datetime | None = None,
) -> Appointment:
    """Move an active appointment (optionally to another professional)."""
    if not appointment.is_active:
        raise BookingError(_("Only booked or confirmed appointments can be moved."))
    professional = professional or appointment.professional
    service = appointment.service
    booking_check(
        service=service,
        professional=professional,
        starts_at=starts_at,
        customer=customer,
        now=now,
        exclude_appointment_id=appointment.pk,
    )
    begin, end, block_from, block_until = _span(service, starts_at)

    def write():
        updated = Appointment.objects.filter(
            pk=appointment.pk, status__in=Appointment.ACTIVE
        ).update(
            professional=professional,
            room_id=professional.room_id,
            starts_at=begin,
            ends_at=end,
            blocked_from=block_from,
            blocked_until=block_until,
            status=Appointment.Status.BOOKED,
            confirmed_at=None,
            reschedule_count=F("reschedule_count") + 1,
            updated_at=timezone.now(),
        )
        if not updated:
            raise BookingError(_("Only booked or confirmed appointments can be moved."))
        from appointments.reminders import reminders_schedule

        appointment.refresh_from_db()
        reminders_schedule(appointment=appointment, now=now)

    _serialised_write(
        professional.pk,
        block_from,
        block_until,
        write,
        exclude_id=appointment.pk,
        room_id=professional.room_id,
    )
    signals.changed(appointment, "rescheduled")
    return appointment


@transaction.atomic
def _status_move(appointment: Appointment, status: str, op: str, **fields) -> bool:
    from appointments.reminders import reminders_drop

    updated = Appointment.objects.filter(pk=appointment.pk, status__in=Appointment.ACTIVE).update(
        status=status, updated_at=timezone.now(), **fields
    )
    appointment.refresh_from_db()
    if updated:
        reminders_drop(appointment=appointment)
        signals.changed(appointment, op)
    return bool(updated)


def appointment_cancel(*, appointment: Appointment, actor=None) -> bool:
    """Cancel (frees the slot at once). False when it was not active any more."""
    return _status_move(
        appointment, Appointment.Status.CANCELLED, "cancelled", cancelled_at=timezone.now()
    )


def appointment_confirm(*, appointment: Appointment) -> bool:
    updated = Appointment.objects.filter(
        pk=appointment.pk, status=Appointment.Status.BOOKED
    ).update(
        status=Appointment.Status.CONFIRMED,
        confirmed_at=timezone.now(),
        updated_at=timezone.now(),
    )
    appointment.refresh_from_db()
    if updated:
        signals.changed(appointment, "confirmed")
    return bool(updated)


def appointment_mark_no_show(*, appointment: Appointment, actor=None) -> bool:
    if appointment.starts_at > timezone.now():
        raise BookingError(_("An appointment that has not started cannot be a no-show."))
    return _status_move(appointment, Appointment.Status.NO_SHOW, "no_show")
