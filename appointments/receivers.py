"""How the appointments app plugs into the apps below it: the router handler "booking", memo
invalidation, and (further down) assistant tools and outgoing webhook events."""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from accounts.models import Holiday
from appointments import availability, booking, outgoing_events, tools  # noqa: F401  (they register themselves)
from appointments.models import (
    AgendaSettings,
    Appointment,
    Professional,
    Service,
    VisitNote,
    WaitlistEntry,
    WorkingHours,
)
from appointments.signals import appointment_changed
from campaigns import automations
from campaigns.models import register_trigger
from inbox import router
from inbox import signals as inbox_signals
from kernel import tasks

router.register(
    router.Handler(
        key=booking.KEY,
        order=50,
        label=_("bookings"),
        accepts=booking.accepts,
        handle=booking.handle,
    )
)


def _start_booking(chat, option: str) -> None:
    """A flow's "book" step: the booking menus, at the chosen service's days when it has one."""
    import uuid

    try:
        code = uuid.UUID(option) if option else None
    except ValueError:
        code = None
    service = (
        Service.objects.filter(
            organization_id=chat.organization_id, code=code, active=True, bookable_online=True
        ).first()
        if code
        else None
    )
    booking.start(chat, service=service)


def _bookable_services(organization_id: int) -> list[tuple[str, str]]:
    return [
        (str(code), name)
        for code, name in Service.objects.filter(
            organization_id=organization_id, active=True, bookable_online=True
        ).values_list("code", "name")
    ]


router.register_starter(
    router.Starter(
        key=booking.KEY,
        label=_("booking menus"),
        start=_start_booking,
        options=_bookable_services,
    )
)


@receiver([post_save, post_delete], sender=AgendaSettings, dispatch_uid="appointments-rules-memo")
@receiver([post_save, post_delete], sender=Holiday, dispatch_uid="appointments-holiday-memo")
def on_agenda_rules_changed(sender, instance, **kwargs):
    availability.rules_changed(instance.organization_id)


@receiver([post_save, post_delete], sender=WorkingHours, dispatch_uid="appointments-hours-memo")
@receiver([post_save, post_delete], sender=Professional, dispatch_uid="appointments-pro-memo")
@receiver([post_save, post_delete], sender=Service, dispatch_uid="appointments-svc-hours-memo")
def on_hours_changed(sender, instance, **kwargs):
    availability.hours_changed(instance.organization_id)


@receiver(m2m_changed, sender=Service.professionals.through, dispatch_uid="appointments-m2m-memo")
def on_service_professionals_changed(sender, instance, **kwargs):
    availability.hours_changed(instance.organization_id)


@receiver([post_save, post_delete], sender=AgendaSettings, dispatch_uid="appointments-agenda-memo")
@receiver([post_save, post_delete], sender=Service, dispatch_uid="appointments-service-memo")
def on_booking_words_changed(sender, instance, **kwargs):
    booking.keywords_changed(instance.organization_id)


@receiver(appointment_changed, dispatch_uid="appointments-waitlist")
def on_appointment_cancelled(sender, *, appointment, op, **kwargs):
    if op == "cancelled":
        tasks.enqueue("appointments.tasks.waitlist_offer", appointment.pk)


@receiver(inbox_signals.contact_erasing, dispatch_uid="appointments-contact-erasing")
def on_contact_erasing(sender, *, contact, token, **kwargs):
    """LGPD erasure (``inbox.contacts.contact_erase``), in its transaction: the visits keep
    their times for the agenda and reports, the person in them goes."""
    visits = Appointment.objects.filter(contact=contact)
    notes = VisitNote.objects.filter(appointment__in=visits)
    for note in notes.exclude(audio=""):
        note.audio.delete(save=False)
    notes.update(audio="", transcript="", note={}, error="")
    visits.update(customer_name=token, notes="")
    WaitlistEntry.objects.filter(contact=contact).delete()


# --- Automation triggers (campaigns' registry) --------------------------------------------------

# op of ``appointment_changed`` → the automation trigger (≤ 20 characters) and its label.
AUTOMATION_TRIGGERS = {
    "created": ("appt_created", _("Appointment booked")),
    "rescheduled": ("appt_rescheduled", _("Appointment rescheduled")),
    "cancelled": ("appt_cancelled", _("Appointment cancelled")),
    "confirmed": ("appt_confirmed", _("Appointment confirmed by the customer")),
    "no_show": ("appt_no_show", _("The customer did not come")),
}
for _trigger, _label in AUTOMATION_TRIGGERS.values():
    register_trigger(_trigger, _label)


@receiver(appointment_changed, dispatch_uid="appointments-automations")
def fire_automations(sender, *, appointment, op, **kwargs):
    trigger = AUTOMATION_TRIGGERS.get(op, ("", ""))[0]
    if (
        trigger
        and appointment.contact_id
        and automations.has_active_rules(appointment.organization_id, trigger)
    ):
        tasks.enqueue("appointments.tasks.appointment_automations", appointment.pk, op)
