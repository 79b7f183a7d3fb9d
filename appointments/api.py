"""Integrator API for appointments: services, professionals, availability and appointments
(create with ``Idempotency-Key``, reschedule, cancel). Times are ISO-8601 and must carry an
offset; answers are in UTC. Refusals are 422 (``slot_taken``: 409) with the same message the
calendar and WhatsApp give."""

from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from accounts.api_auth import (
    IDEMPOTENCY_HEADER,
    ApiView,
    Conflict,
    ErrorBody,
    Unprocessable,
    idempotent,
    query_data,
)
from appointments import access, availability, services
from appointments.models import Appointment, Professional, Service
from inbox.models import Contact

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 422: ErrorBody}


class ServiceOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField()
    duration_minutes = serializers.IntegerField()
    buffer_before_minutes = serializers.IntegerField()
    buffer_after_minutes = serializers.IntegerField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    bookable_online = serializers.BooleanField()
    active = serializers.BooleanField()
    professionals = serializers.SerializerMethodField()

    def get_professionals(self, service) -> list[str]:
        return [str(p.code) for p in service.professionals.all()]


class ProfessionalOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    active = serializers.BooleanField()


class AppointmentOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    service = serializers.UUIDField(source="service.code")
    professional = serializers.UUIDField(source="professional.code")
    contact = serializers.UUIDField(source="contact.code", allow_null=True, default=None)
    customer_name = serializers.CharField()
    start = serializers.DateTimeField(source="starts_at")
    end = serializers.DateTimeField(source="ends_at")
    status = serializers.CharField()
    channel = serializers.CharField()
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()


def _results(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    return type(f"{item.__name__}List", (serializers.Serializer,), {"results": item(many=True)})


class SlotOut(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    local = serializers.CharField(help_text="The start in `time_zone`, with its offset.")
    professional = serializers.UUIDField()


class AvailabilityOut(serializers.Serializer):
    service = serializers.UUIDField()
    time_zone = serializers.CharField()
    slots = SlotOut(many=True)


def _out(appointment: Appointment) -> dict:
    return AppointmentOut(appointment).data


class AwareDateTimeField(serializers.DateTimeField):
    """A time without its UTC offset is refused rather than guessed (which zone did they mean?)."""

    def to_internal_value(self, value):
        parsed = parse_datetime(str(value)) if isinstance(value, str) else None
        if parsed is not None and timezone.is_naive(parsed):
            raise serializers.ValidationError(
                _("Give the time with its UTC offset, e.g. 2026-03-10T09:00:00-03:00.")
            )
        return super().to_internal_value(value)


def _refused(error: services.BookingError):
    if isinstance(error, services.SlotTaken):
        return Conflict(error.messages[0], code="slot_taken")
    return Unprocessable(error.messages[0], code="booking_refused")


class ServiceListApi(ApiView):
    resource = "appointments"

    @extend_schema(
        operation_id="services_list",
        summary="List services",
        responses={200: _results(ServiceOut), **ERRORS},
    )
    def get(self, request):
        rows = Service.objects.filter(organization=self.organization).prefetch_related(
            "professionals"
        )
        return Response({"results": ServiceOut(rows, many=True).data})


class ProfessionalListApi(ApiView):
    resource = "appointments"

    @extend_schema(
        operation_id="professionals_list",
        summary="List professionals",
        responses={200: _results(ProfessionalOut), **ERRORS},
    )
    def get(self, request):
        rows = access.professionals_for_member(self.membership)
        return Response({"results": ProfessionalOut(rows, many=True).data})


class AvailabilityApi(ApiView):
    resource = "appointments"

    class AvailabilityIn(serializers.Serializer):
        service = serializers.UUIDField()
        professional = serializers.UUIDField(required=False)
        date_from = serializers.DateField(required=False, help_text="Local date (organization).")
        date_to = serializers.DateField(
            required=False, help_text="At most 31 days after date_from."
        )
        time_zone = serializers.CharField(required=False, help_text="IANA zone for `local` times.")

        def validate_time_zone(self, value):
            try:
                return ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise serializers.ValidationError(
                    _("Unknown time zone %(zone)r: use an IANA name such as America/Sao_Paulo.")
                    % {"zone": value}
                ) from error

    @extend_schema(
        operation_id="availability",
        summary="Free start times",
        parameters=[AvailabilityIn],
        responses={200: AvailabilityOut, **ERRORS},
    )
    def get(self, request):
        params = self.AvailabilityIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        values = params.validated_data
        service = get_object_or_404(Service, organization=self.organization, code=values["service"])
        professional = None
        if values.get("professional"):
            professional = get_object_or_404(
                access.professionals_for_member(self.membership), code=values["professional"]
            )
        today = timezone.now().astimezone(availability.zone(self.organization)).date()
        start: date = values.get("date_from") or today
        end: date = values.get("date_to") or start + timedelta(days=6)
        if end < start or (end - start).days > 31:
            raise exceptions.ValidationError(
                {"date_to": [_("Between date_from and 31 days after it.")]}
            )
        zone = values.get("time_zone") or availability.zone(self.organization)
        slots = availability.free_slots(
            service=service, professional=professional, start=start, end=end
        )
        codes = dict(
            Professional.objects.filter(organization=self.organization).values_list("pk", "code")
        )
        return Response(
            {
                "service": str(service.code),
                "time_zone": str(zone),
                "slots": [
                    {
                        "start": slot.starts_at.isoformat().replace("+00:00", "Z"),
                        "end": slot.ends_at.isoformat().replace("+00:00", "Z"),
                        "local": slot.starts_at.astimezone(zone).isoformat(),
                        "professional": str(codes[slot.professional_id]),
                    }
                    for slot in slots
                ],
            }
        )


class AppointmentListApi(ApiView):
    resource = "appointments"

    class AppointmentIn(serializers.Serializer):
        service = serializers.UUIDField()
        professional = serializers.UUIDField(
            required=False, help_text="Omit: any free professional."
        )
        start = AwareDateTimeField(help_text="ISO-8601 with offset.")
        contact = serializers.UUIDField(required=False)
        customer_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
        notes = serializers.CharField(required=False, allow_blank=True, max_length=4000)

    class AppointmentFilterIn(serializers.Serializer):
        start_after = serializers.DateTimeField(required=False)
        start_before = serializers.DateTimeField(required=False)
        status = serializers.ChoiceField(choices=Appointment.Status.values, required=False)

    @extend_schema(
        operation_id="appointments_list",
        summary="List appointments",
        parameters=[AppointmentFilterIn],
        responses={200: _results(AppointmentOut), **ERRORS},
    )
    def get(self, request):
        params = self.AppointmentFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        values = params.validated_data
        rows = Appointment.objects.filter(
            organization=self.organization,
            professional__in=access.professionals_for_member(self.membership),
        ).select_related("service", "professional", "contact")
        if "start_after" in values:
            rows = rows.filter(starts_at__gte=values["start_after"])
        if "start_before" in values:
            rows = rows.filter(starts_at__lt=values["start_before"])
        if "status" in values:
            rows = rows.filter(status=values["status"])
        return Response(
            {"results": AppointmentOut(rows.order_by("starts_at")[:500], many=True).data}
        )

    @extend_schema(
        operation_id="appointments_create",
        summary="Book an appointment",
        request=AppointmentIn,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: AppointmentOut, 409: ErrorBody, **ERRORS},
    )
    def post(self, request):
        data = self.AppointmentIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        starts_at = values["start"]
        service = get_object_or_404(Service, organization=self.organization, code=values["service"])
        contact = None
        if values.get("contact"):
            contact = get_object_or_404(
                Contact, organization=self.organization, code=values["contact"]
            )
        if not contact and not values.get("customer_name"):
            raise exceptions.ValidationError(
                {"customer_name": [_("Give a contact or a customer name.")]}
            )
        professionals = access.professionals_for_member(self.membership)
        if values.get("professional"):
            professional = get_object_or_404(professionals, code=values["professional"])
        else:
            professional = _any_free(service, starts_at, professionals)

        def work():
            try:
                appointment = services.appointment_book(
                    service=service,
                    professional=professional,
                    starts_at=starts_at,
                    channel=Appointment.Channel.API,
                    contact=contact,
                    customer_name=values.get("customer_name", ""),
                    notes=values.get("notes", ""),
                    created_by=self.actor,
                )
            except services.BookingError as error:
                raise _refused(error) from error
            return Response(_out(appointment), status=status.HTTP_201_CREATED)

        return idempotent(request, self.organization, work)


def _any_free(service, starts_at, professionals) -> Professional:
    day = starts_at.astimezone(availability.zone(service.organization)).date()
    allowed = set(professionals.values_list("pk", flat=True))
    for slot in availability.free_slots(service=service, start=day, end=day, enforce_notice=False):
        if slot.starts_at == starts_at and slot.professional_id in allowed:
            return Professional.objects.get(pk=slot.professional_id)
    raise Conflict(_("No professional is free for this service at that time."), code="slot_taken")


def _appointment(view, code) -> Appointment:
    return access.get_appointment_for_member(view.membership, code)


class AppointmentDetailApi(ApiView):
    resource = "appointments"

    @extend_schema(
        operation_id="appointments_get",
        summary="An appointment",
        responses={200: AppointmentOut, **ERRORS},
    )
    def get(self, request, code):
        return Response(_out(_appointment(self, code)))


class AppointmentRescheduleApi(ApiView):
    resource = "appointments"

    class RescheduleIn(serializers.Serializer):
        start = AwareDateTimeField()
        professional = serializers.UUIDField(required=False)

    @extend_schema(
        operation_id="appointments_reschedule",
        summary="Move an appointment",
        request=RescheduleIn,
        responses={200: AppointmentOut, 409: ErrorBody, **ERRORS},
    )
    def post(self, request, code):
        appointment = _appointment(self, code)
        data = self.RescheduleIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        professional = None
        if values.get("professional"):
            professional = get_object_or_404(
                access.professionals_for_member(self.membership), code=values["professional"]
            )
        try:
            services.appointment_reschedule(
                appointment=appointment,
                starts_at=values["start"],
                professional=professional,
                actor=self.actor,
            )
        except services.BookingError as error:
            raise _refused(error) from error
        return Response(_out(appointment))


class AppointmentCancelApi(ApiView):
    resource = "appointments"

    @extend_schema(
        operation_id="appointments_cancel",
        summary="Cancel an appointment",
        request=None,
        responses={200: AppointmentOut, 409: ErrorBody, **ERRORS},
    )
    def post(self, request, code):
        appointment = _appointment(self, code)
        if not services.appointment_cancel(appointment=appointment, actor=self.actor):
            raise Conflict(_("That appointment is not active."), code="not_active")
        return Response(_out(appointment))
