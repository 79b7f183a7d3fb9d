"""Integrator API for contacts (see ``accounts.api_auth``).

Contacts are written by ``inbox.contacts`` (create, update, erase: the same events as the
pages); their consent ledger (LGPD opt-in/opt-out), staff edits with conversions and the bulk
import's parsing are services of ``campaigns`` (the audience), which sits above ``inbox``;
these endpoints compose both, so they live here, in the project layer.
"""

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from accounts.api_auth import (
    CURSOR_PARAMETERS,
    ApiIn,
    ApiView,
    Conflict,
    ErrorBody,
    Unprocessable,
    keyset_page,
    page_response,
    paginated,
    query_data,
)
from campaigns import services as audience
from campaigns.models import ConsentEvent
from inbox import contacts as inbox_contacts
from inbox import selectors
from inbox.api import phone_e164
from inbox.models import Contact

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}
IMPORT_MAX_ROWS = 1000


class ContactOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    phone = serializers.CharField(help_text="E.164")
    name = serializers.CharField()
    profile_name = serializers.CharField(help_text="The customer's WhatsApp profile name.")
    email = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    attributes = serializers.DictField()
    language = serializers.CharField()
    time_zone = serializers.CharField()
    stage = serializers.ChoiceField(choices=Contact.Stage.values)
    opt_in = serializers.ChoiceField(choices=Contact.OptIn.choices)
    opt_in_at = serializers.DateTimeField(allow_null=True)
    opt_in_source = serializers.CharField()
    last_inbound_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ContactFieldsIn(ApiIn):
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    email = serializers.EmailField(required=False, allow_blank=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=50
    )
    attributes = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=500), required=False
    )
    language = serializers.CharField(required=False, allow_blank=True, max_length=10)
    time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    stage = serializers.ChoiceField(choices=Contact.Stage.values, required=False)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class ContactCreateIn(ContactFieldsIn):
    phone = serializers.CharField(max_length=20, help_text="E.164, e.g. +5511999990000.")

    def validate_phone(self, value):
        phone = phone_e164(value)
        if phone is None:
            raise exceptions.ValidationError(_("An E.164 phone number is required."))
        return phone


CONTACT_EXAMPLE = OpenApiExample(
    "Contact",
    value={
        "phone": "+5511999990000",
        "name": "Ana Souza",
        "tags": ["implant"],
        "attributes": {"plan": "gold"},
    },
    request_only=True,
)


def _contacts(membership):
    """The member's contacts, without erased ones (the API's DELETE erases)."""
    return selectors.contact_search(membership, "").filter(erased_at__isnull=True)


def _contact_in(membership, code) -> Contact:
    return get_object_or_404(_contacts(membership), code=code)


def _find_by_phone(organization, phone: str) -> Contact | None:
    return (
        Contact.objects.filter(organization=organization, wa_id=phone.lstrip("+")).first()
        or Contact.objects.filter(organization=organization, phone=phone).first()
    )


def _contact_create(*, organization, phone: str, data: dict) -> Contact:
    try:
        return inbox_contacts.contact_create(
            organization_id=organization.pk, phone=phone, data=data, source="api"
        )
    except IntegrityError:  # created by someone else since we looked
        raise Conflict(
            _("A contact with this phone already exists; use upsert."), code="contact_exists"
        ) from None


class ContactListApi(ApiView):
    """List contacts (GET) or create one (POST; 409 if the phone is already a contact)."""

    resource = "contacts"

    class ContactFilterIn(serializers.Serializer):
        q = serializers.CharField(required=False, max_length=100, help_text="Name or phone.")
        tag = serializers.CharField(required=False, max_length=40)
        opt_in = serializers.ChoiceField(choices=Contact.OptIn.values, required=False)
        ordering = serializers.ChoiceField(
            choices=["-created_at", "created_at", "-updated_at", "updated_at"],
            default="-created_at",
        )

    @extend_schema(
        operation_id="contacts_list",
        summary="List contacts",
        parameters=[ContactFilterIn, *CURSOR_PARAMETERS],
        responses={200: paginated(ContactOut), **ERRORS},
    )
    def get(self, request):
        params = self.ContactFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        data = params.validated_data
        contacts = selectors.contact_search(self.membership, data.get("q", "").strip()).filter(
            erased_at__isnull=True
        )
        if data.get("tag"):
            contacts = contacts.filter(tags__icontains=f'"{data["tag"]}"')
        if data.get("opt_in"):
            contacts = contacts.filter(opt_in=data["opt_in"])
        ordering = data["ordering"]
        rows, next_url = keyset_page(
            request, contacts, ordering.lstrip("-"), descending=ordering.startswith("-")
        )
        return page_response(request, rows, next_url, ContactOut)

    @extend_schema(
        operation_id="contacts_create",
        summary="Create a contact",
        request=ContactCreateIn,
        responses={201: ContactOut, 409: ErrorBody, **ERRORS},
        examples=[CONTACT_EXAMPLE],
    )
    def post(self, request):
        data = ContactCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        phone = values.pop("phone")
        if _find_by_phone(self.organization, phone) is not None:
            raise Conflict(
                _("A contact with this phone already exists; use upsert."), code="contact_exists"
            )
        contact = _contact_create(organization=self.organization, phone=phone, data=values)
        return Response(ContactOut(_contact_in(self.membership, contact.code)).data, status=201)


class ContactUpsertApi(ApiView):
    """Create the contact with this phone, or update it: 201 when created, 200 when updated."""

    resource = "contacts"

    @extend_schema(
        operation_id="contacts_upsert",
        summary="Create or update a contact by phone",
        request=ContactCreateIn,
        responses={200: ContactOut, 201: ContactOut, **ERRORS},
        examples=[CONTACT_EXAMPLE],
    )
    def post(self, request):
        data = ContactCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        phone = values.pop("phone")
        with transaction.atomic():
            existing = _find_by_phone(self.organization, phone)
            if existing is None:
                contact = _contact_create(organization=self.organization, phone=phone, data=values)
            else:
                contact = _contact_in(self.membership, existing.code)
                audience.contact_update(contact=contact, actor=self.actor, data=values)
        code = status.HTTP_201_CREATED if existing is None else status.HTTP_200_OK
        return Response(ContactOut(_contact_in(self.membership, contact.code)).data, status=code)


class ContactDetailApi(ApiView):
    resource = "contacts"

    @extend_schema(
        operation_id="contacts_retrieve",
        summary="Get a contact",
        responses={200: ContactOut, **ERRORS},
    )
    def get(self, request, code):
        return Response(ContactOut(_contact_in(self.membership, code)).data)

    @extend_schema(
        operation_id="contacts_update",
        summary="Update a contact",
        description="Only the fields given change. Consent changes through opt-in/opt-out.",
        request=ContactFieldsIn,
        responses={200: ContactOut, **ERRORS},
    )
    def patch(self, request, code):
        contact = _contact_in(self.membership, code)
        data = ContactFieldsIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        audience.contact_update(contact=contact, actor=self.actor, data=dict(data.validated_data))
        return Response(ContactOut(_contact_in(self.membership, code)).data)

    @extend_schema(
        operation_id="contacts_delete",
        summary="Delete a contact (LGPD erasure)",
        description="Erases the contact's personal data as `contacts_erase` does (name, phone, "
        "email, attributes, message text and media; anonymised statistics stay) and records it "
        "in the audit log; the contact is no longer listed or found.",
        responses={204: None, **ERRORS},
    )
    def delete(self, request, code):
        contact = _contact_in(self.membership, code)
        inbox_contacts.contact_erase(contact=contact, actor=self.actor, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConsentIn(ApiIn):
    detail = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Where the consent was given or withdrawn.",
    )


class _ConsentApi(ApiView):
    resource = "contacts"
    opted_in = True

    def post(self, request, code):
        contact = _contact_in(self.membership, code)
        data = ConsentIn(data=request.data)
        data.is_valid(raise_exception=True)
        audience.contact_set_consent(
            contact=contact,
            opted_in=self.opted_in,
            source=ConsentEvent.Source.API,
            detail=data.validated_data.get("detail", ""),
            actor=self.actor,
        )
        return Response(ContactOut(_contact_in(self.membership, code)).data)


class ContactOptInApi(_ConsentApi):
    opted_in = True

    @extend_schema(
        operation_id="contacts_opt_in",
        summary="Record a contact's opt-in to campaigns",
        request=ConsentIn,
        responses={200: ContactOut, **ERRORS},
    )
    def post(self, request, code):
        return super().post(request, code)


class ContactOptOutApi(_ConsentApi):
    opted_in = False

    @extend_schema(
        operation_id="contacts_opt_out",
        summary="Record a contact's opt-out (queued campaign sends to it are skipped)",
        request=ConsentIn,
        responses={200: ContactOut, **ERRORS},
    )
    def post(self, request, code):
        return super().post(request, code)


IMPORT_COLUMNS = ["phone", "name", "email", "tags", "language", "time_zone", "stage", "opt_in"]


class ContactImportRowIn(ApiIn):
    """One contact of a bulk import."""

    phone = serializers.CharField(max_length=20)
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=50
    )
    language = serializers.CharField(required=False, allow_blank=True, max_length=10)
    time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    stage = serializers.CharField(required=False, allow_blank=True, max_length=12)
    opt_in = serializers.BooleanField(required=False, allow_null=True, default=None)
    attributes = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=500), required=False
    )


class ContactImportApi(ApiView):
    """All or nothing: any invalid row → 422 listing every row's error, and nothing is stored."""

    resource = "contacts"

    class ContactImportIn(ApiIn):
        contacts = serializers.ListField(
            child=ContactImportRowIn(), min_length=1, max_length=IMPORT_MAX_ROWS
        )

    class ContactImportOut(serializers.Serializer):
        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        merged = serializers.IntegerField(
            help_text="Rows merged into another row with the same phone."
        )

    @extend_schema(
        operation_id="contacts_import",
        summary="Import contacts in bulk (up to 1000)",
        request=ContactImportIn,
        responses={200: ContactImportOut, 422: ErrorBody, **ERRORS},
        examples=[
            OpenApiExample(
                "Two contacts",
                value={
                    "contacts": [
                        {"phone": "+5511999990000", "name": "Ana", "opt_in": True},
                        {"phone": "+5511988880000", "tags": ["lead"]},
                    ]
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        data = self.ContactImportIn(data=request.data)
        data.is_valid(raise_exception=True)
        rows = data.validated_data["contacts"]
        keys = sorted({k for row in rows for k in row.get("attributes", {})})
        header = IMPORT_COLUMNS + [f"attribute:{k}" for k in keys]
        table = []
        for row in rows:
            opt_in = row.get("opt_in")
            cells = [
                row["phone"],
                row.get("name", ""),
                row.get("email", ""),
                ", ".join(row.get("tags", [])),
                row.get("language", ""),
                row.get("time_zone", ""),
                row.get("stage", ""),
                "" if opt_in is None else ("yes" if opt_in else "no"),
            ]
            table.append(cells + [row.get("attributes", {}).get(k, "") for k in keys])
        report = audience.contacts_import(
            organization=self.organization,
            actor=self.actor,
            header=header,
            rows=table,
            mapping={name: name for name in header},
        )
        if not report.ok:
            rows = [{"row": line - 1, "error": str(error)} for line, error in report.errors]
            raise Unprocessable(
                _("Nothing was imported: some rows are invalid."),
                code="import_invalid",
                details={"rows": rows},
            )
        return Response(
            {"created": report.created, "updated": report.updated, "merged": report.merged}
        )
