"""Integrator API for drip programs: enrol a contact (see ``accounts.api_auth``).

Scope ``campaigns:write`` (drip programs live with campaigns; a signed-in member needs to edit
campaigns). The contact is named by its id or by phone (created when new, as the public opt-in
form does); the enrolment is ``campaigns.drips.enrolment_create``'s, with its rules: an
opted-out contact or a paused program is refused (409), never enrolled.
"""

from zoneinfo import available_timezones

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from accounts.api_auth import ApiIn, ApiView, Conflict, ErrorBody
from campaigns import drips, services
from campaigns.messaging import ActionSkipped
from campaigns.models import ConsentEvent, DripEnrolment, DripProgram, DripQuestion
from inbox import contacts as inbox_contacts
from inbox.api import ContactRefOut
from inbox.models import Contact

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody}


class DripEnrolIn(ApiIn):
    contact = serializers.UUIDField(
        required=False, help_text="The contact's id; or give `phone` instead."
    )
    phone = serializers.CharField(
        required=False,
        max_length=32,
        help_text="E.164, e.g. +5511999990000 (national numbers are read in the organization's "
        "country); the contact is created when new.",
    )
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=120, help_text="For a new contact."
    )
    topic = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=60,
        help_text="One of the program's topics, when it has topics.",
    )
    language = serializers.ChoiceField(
        choices=DripQuestion.Language.values,
        required=False,
        help_text="The questions' language (question of the day).",
    )
    time_zone = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="IANA name, e.g. America/Sao_Paulo; default: the contact's, else its phone's "
        "country's, else the organization's.",
    )
    consent = serializers.BooleanField(
        required=False,
        default=False,
        help_text="True records the contact's opt-in (source `api`) before enrolling, as the "
        "opt-in form does. Send it only when the person agreed.",
    )

    def validate(self, attrs):
        if bool(attrs.get("contact")) == bool(attrs.get("phone")):
            raise exceptions.ValidationError(
                {"contact": [_("Give either the contact's id or a phone, not both.")]}
            )
        zone = attrs.get("time_zone")
        if zone and zone not in available_timezones():
            raise exceptions.ValidationError(
                {"time_zone": [_("Unknown time zone: use an IANA name like America/Sao_Paulo.")]}
            )
        return attrs


class DripEnrolmentOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    program = serializers.UUIDField(source="program.code")
    contact = ContactRefOut()
    status = serializers.ChoiceField(choices=DripEnrolment.Status.values)
    topic = serializers.CharField()
    language = serializers.CharField()
    time_zone = serializers.CharField(source="contact.time_zone")
    source = serializers.CharField()
    next_due_at = serializers.DateTimeField(allow_null=True)
    enrolled_at = serializers.DateTimeField()


ENROL_EXAMPLE = OpenApiExample(
    "By phone, with consent",
    value={
        "phone": "+5511987654321",
        "name": "Paula Pires",
        "topic": "higiene",
        "language": "pt",
        "consent": True,
    },
    request_only=True,
)


class DripEnrolmentCreateApi(ApiView):
    """Enrol a contact in a drip program (201; 200 when already enrolled and active)."""

    resource = "campaigns"

    @extend_schema(
        operation_id="drip_enrolments_create",
        summary="Enrol a contact in a drip program",
        description="Names the contact by `contact` (id) or `phone` (created when new). "
        "Enrolling an already active contact changes only its topic, language or time zone "
        "(200). 409 when the contact opted out (unless `consent` is true: then the opt-in is "
        "recorded first) or the program is paused.",
        request=DripEnrolIn,
        responses={200: DripEnrolmentOut, 201: DripEnrolmentOut, **ERRORS},
        examples=[ENROL_EXAMPLE],
    )
    def post(self, request, code):
        program = get_object_or_404(
            DripProgram.objects.select_related("organization"),
            organization=self.organization,
            code=code,
        )
        data = DripEnrolIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        topics = program.topic_list
        topic = values.get("topic", "")
        if topic and topic not in topics or topics and not topic:
            raise exceptions.ValidationError(
                {"topic": [_("Choose one of the program's topics: %s.") % ", ".join(topics)]}
                if topics
                else {"topic": [_("This program has no topics.")]}
            )
        with transaction.atomic():
            contact = self._contact(program, values)
            before = DripEnrolment.objects.filter(
                program=program, contact=contact, status=DripEnrolment.Status.ACTIVE
            ).exists()
            try:
                enrolment = drips.enrolment_create(
                    program=program,
                    contact=contact,
                    source="api",
                    topic=topic,
                    language=values.get("language", ""),
                )
            except ActionSkipped as refused:
                raise Conflict(str(refused), code="not_enrolled") from refused
        enrolment.contact = contact
        enrolment.program = program
        return Response(DripEnrolmentOut(enrolment).data, status=200 if before else 201)

    def _contact(self, program: DripProgram, values: dict) -> Contact:
        organization = program.organization
        if values.get("contact"):
            contact = Contact.objects.filter(
                organization=organization, code=values["contact"], erased_at=None
            ).first()
            if contact is None:
                raise exceptions.ValidationError({"contact": [_("No such contact.")]})
        else:
            phone = services.phone_normalize(values["phone"], services.default_region(organization))
            if phone is None:
                raise exceptions.ValidationError(
                    {"phone": [_("Not a valid phone number; use E.164, e.g. +5511999990000.")]}
                )
            contact, _created = inbox_contacts.contact_get_or_create(
                organization_id=organization.pk,
                phone=phone,
                defaults={"name": values.get("name", "")},
                source="api",
            )
        zone = values.get("time_zone") or contact.time_zone
        if not zone:
            zone = drips.zone_for_phone(contact.phone, organization.time_zone or "UTC")
        if zone != contact.time_zone:
            inbox_contacts.contact_update(contact=contact, data={"time_zone": zone}, source="api")
        if values.get("consent") and contact.opt_in != Contact.OptIn.OPTED_IN:
            services.contact_set_consent(
                contact=contact,
                opted_in=True,
                source=ConsentEvent.Source.API,
                detail=_("API enrolment: %(program)s") % {"program": program.name},
                actor=self.actor,
            )
            contact.opt_in = Contact.OptIn.OPTED_IN
        return contact
