"""The staff calendar: day / week / month views per professional or for the whole clinic,
booking, moving and cancelling with htmx, and each professional's ICS subscription feed."""

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from appointments import access, availability, calendar_files, selectors, services
from appointments.forms import AppointmentForm, MoveForm
from appointments.models import Appointment, Professional

REFRESH = "calendar-refresh"


def _day(value: str | None, organization) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return timezone.now().astimezone(availability.zone(organization)).date()


@require_GET
@access.agenda_required
@vary_on_headers("HX-Request")
def calendar(request):
    organization = request.organization
    view = request.GET.get("view") if request.GET.get("view") in selectors.VIEWS else "week"
    day = _day(request.GET.get("date"), organization)
    visible = list(access.professionals_for_member(request.membership).filter(active=True))
    chosen = next((p for p in visible if str(p.code) == request.GET.get("professional")), None)
    if chosen is None and not request.agenda_scope.everyone and visible:
        chosen = visible[0]
    shown = [chosen] if chosen else visible
    step = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=31)}[view]
    context = {
        "view": view,
        "day": day,
        "previous": (day - step).isoformat()
        if view != "month"
        else (day.replace(day=1) - timedelta(days=1)).isoformat(),
        "next": (day + step).isoformat()
        if view != "month"
        else (day.replace(day=28) + timedelta(days=4)).isoformat(),
        "today": timezone.now().astimezone(availability.zone(organization)).date(),
        "professionals": visible,
        "chosen": chosen,
        "everyone": request.agenda_scope.everyone,
        "statuses": Appointment.Status,
    }
    if view == "month":
        context["weeks"] = selectors.month_weeks(
            organization=organization, day=day, professionals=shown
        )
    else:
        columns, (first, last) = selectors.columns_for(
            organization=organization,
            view=view,
            day=day,
            professionals=shown,
            by_professional=view == "day" and chosen is None,
        )
        context.update(columns=columns, hours=[f"{h:02d}:00" for h in range(first, last)])
    template = "appointments/calendar.html"
    return render(request, f"{template}#grid" if request.htmx else template, context)


def _form_page(request, template, context, status=200):
    name = f"{template}#form" if request.htmx else template
    return render(request, name, context, status=status)


def _done(request, appointment: Appointment, message: str):
    if request.htmx:
        response = render(
            request,
            "appointments/appointment_detail.html#detail",
            _detail_context(request, appointment, notice=message),
        )
        return trigger_client_event(response, REFRESH)
    return redirect(
        f"{reverse('appointments_calendar')}?date={appointment.starts_at.astimezone(availability.zone(appointment.organization)).date()}"
    )


@require_http_methods(["GET", "POST"])
@access.agenda_required
def appointment_create(request):
    professionals = access.professionals_for_member(request.membership)
    initial = {
        "phone": request.GET.get("phone") or "",
        "date": request.GET.get("date") or "",
        "time": request.GET.get("time") or "",
        "professional": request.GET.get("professional") or "",
    }
    form = AppointmentForm(
        request.POST or None,
        initial=initial,
        organization=request.organization,
        professionals=professionals,
    )
    if request.method == "POST" and form.is_valid():
        try:
            appointment = services.appointment_book(
                service=form.cleaned_data["service"],
                professional=form.cleaned_data["professional"],
                starts_at=form.starts_at(),
                channel=Appointment.Channel.STAFF,
                contact=form.cleaned_data["contact"],
                customer_name=form.cleaned_data["customer_name"],
                notes=form.cleaned_data["notes"],
                created_by=request.user,
            )
        except services.BookingError as error:
            form.add_error(None, error.messages[0])
        else:
            message = _("Appointment booked.")
            if form.cleaned_data["notify"] and appointment.contact_id:
                message = _confirm_on_whatsapp(appointment, message)
            return _done(request, appointment, message)
    status = 422 if request.method == "POST" else 200
    return _form_page(request, "appointments/appointment_form.html", {"form": form}, status)


def _confirm_on_whatsapp(appointment: Appointment, message: str) -> str:
    from appointments import booking
    from inbox.models import Chat

    chat = (
        Chat.objects.select_related("contact", "organization", "number")
        .filter(contact_id=appointment.contact_id)
        .order_by("-last_message_at")
        .first()
    )
    if chat is None or not chat.window_is_open:
        return f"{message} " + _(
            "No confirmation was sent: the customer has not written in the last 24 hours."
        )
    booking.confirmation_send(appointment=appointment, chat=chat)
    return f"{message} " + _("The confirmation went to the customer on WhatsApp.")


def _detail_context(request, appointment, *, form=None, notice=""):
    local = appointment.starts_at.astimezone(availability.zone(appointment.organization))
    form = form or MoveForm(
        initial={
            "date": local.date(),
            "time": local.time().strftime("%H:%M"),
            "professional": appointment.professional.code,
        },
        organization=request.organization,
        professionals=access.professionals_for_member(request.membership),
    )
    return {
        "appointment": appointment,
        "visit_notes": list(appointment.notes_by_voice.all()[:20]),
        "local_start": local,
        "form": form,
        "notice": notice,
        "can_no_show": appointment.is_active and appointment.starts_at <= timezone.now(),
    }


@require_GET
@access.agenda_required
def appointment_detail(request, code):
    appointment = access.get_appointment_for_member(request.membership, code)
    template = "appointments/appointment_detail.html"
    return render(
        request,
        f"{template}#detail" if request.htmx else template,
        _detail_context(request, appointment),
    )


@require_POST
@access.agenda_required
def appointment_move(request, code):
    appointment = access.get_appointment_for_member(request.membership, code)
    form = MoveForm(
        request.POST,
        organization=request.organization,
        professionals=access.professionals_for_member(request.membership),
    )
    if form.is_valid():
        try:
            services.appointment_reschedule(
                appointment=appointment,
                starts_at=form.starts_at(),
                professional=form.cleaned_data["professional"],
                actor=request.user,
            )
        except services.BookingError as error:
            form.add_error(None, error.messages[0])
        else:
            return _done(request, appointment, _("Appointment moved."))
    template = "appointments/appointment_detail.html"
    return render(
        request,
        f"{template}#detail" if request.htmx else template,
        _detail_context(request, appointment, form=form),
        status=422,
    )


@require_POST
@access.agenda_required
def appointment_status(request, code, action):
    appointment = access.get_appointment_for_member(request.membership, code)
    try:
        if action == "cancel":
            changed = services.appointment_cancel(appointment=appointment, actor=request.user)
        elif action == "confirm":
            changed = services.appointment_confirm(appointment=appointment)
        elif action == "no-show":
            changed = services.appointment_mark_no_show(appointment=appointment, actor=request.user)
        else:
            raise Http404
    except services.BookingError as error:
        return HttpResponse(error.messages[0], status=422)
    if not changed:
        return HttpResponse(_("That appointment was already changed."), status=409)
    return _done(
        request,
        appointment,
        {
            "cancel": _("Appointment cancelled."),
            "confirm": _("Appointment confirmed."),
            "no-show": _("Marked as no-show."),
        }[action],
    )


@require_POST
@access.agenda_required
def visit_note_create(request, code):
    """A voice note recorded in the browser or uploaded, on one appointment."""
    from appointments import visit_notes

    appointment = access.get_appointment_for_member(request.membership, code)
    upload = request.FILES.get("audio")
    try:
        if upload is None:
            raise ValidationError(_("Record or choose an audio file first."))
        visit_notes.visit_note_add(appointment=appointment, author=request.user, upload=upload)
    except ValidationError as error:
        return HttpResponse(error.messages[0], status=422)
    appointment.refresh_from_db()
    return _done(request, appointment, _("Voice note saved; the transcript follows."))


@require_GET
@access.agenda_required
def agenda_report(request):
    """Bookings by channel, confirmation and no-show rates, occupancy per professional."""
    organization = request.organization
    today = timezone.now().astimezone(availability.zone(organization)).date()
    start = (
        _day(request.GET.get("from"), organization)
        if request.GET.get("from")
        else today - timedelta(days=29)
    )
    end = _day(request.GET.get("until"), organization) if request.GET.get("until") else today
    if end < start or (end - start).days > 366:
        start, end = today - timedelta(days=29), today
    professionals = list(access.professionals_for_member(request.membership))
    report = selectors.agenda_report(
        organization=organization, professionals=professionals, start=start, end=end
    )
    return render(
        request, "appointments/report.html", {"report": report, "start": start, "end": end}
    )


# --- ICS subscription feed ------------------------------------------------------------------


@require_GET
def ics_feed(request, token):
    """A professional's agenda for calendar apps; the secret URL is the only credential."""
    professional = get_object_or_404(
        Professional.objects.select_related("organization"), ics_token=token
    )
    since = timezone.now() - timedelta(days=30)
    appointments = (
        Appointment.objects.filter(professional=professional, starts_at__gte=since)
        .exclude(status=Appointment.Status.CANCELLED)
        .select_related("service", "contact")
        .order_by("starts_at")[:2000]
    )
    body = calendar_files.professional_ics(professional, appointments)
    return HttpResponse(body, content_type="text/calendar; charset=utf-8")


@require_POST
@access.agenda_required
def ics_revoke(request, code):
    """A new secret: calendar apps holding the old URL stop receiving the agenda."""
    professional = access.get_professional_for_member(request.membership, code)
    from appointments.models import _ics_token

    Professional.objects.filter(pk=professional.pk).update(ics_token=_ics_token())
    return redirect(f"{reverse('appointments_calendar')}?professional={professional.code}")
