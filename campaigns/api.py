"""Integrator API for campaigns and segments (see ``accounts.api_auth``).

Campaigns are validated by the campaign page's own form (``campaigns.forms.CampaignForm``) and
changed by the services its buttons call (launch, pause, resume, cancel), so the API can do
exactly what the page can, with the same rules. Segments are saved filters over contacts or
static lists, counted live like on the segments page.
"""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from accounts.api_auth import (
    CURSOR_PARAMETERS,
    ApiIn,
    ApiView,
    Conflict,
    ErrorBody,
    keyset_page,
    page_response,
    paginated,
    query_data,
)
from campaigns import access, forms, selectors, services
from campaigns.models import Campaign, CampaignRecipient, Segment
from inbox.api import ContactRefOut, NumberRefOut
from inbox.models import Contact
from integrations.models import MessageTemplate, WhatsAppNumber

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}
STATE_ERRORS = {409: ErrorBody, **ERRORS}
VARIABLE_SOURCES = ["name", "first_name", "phone", "email", "attribute", "fixed"]
STATIC_CONTACTS_MAX = 1000


# --- Campaigns --------------------------------------------------------------------------------


class TemplateRefOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    language = serializers.CharField()


class SegmentRefOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()


class VariableIn(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=VARIABLE_SOURCES,
        default="name",
        help_text="A contact field, `attribute` (a custom attribute named in `value`) or "
        "`fixed` (the text in `value`).",
    )
    value = serializers.CharField(required=False, allow_blank=True, max_length=200)
    fallback = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Used when the contact has no value.",
    )


class VariablesIn(serializers.Serializer):
    header = VariableIn(many=True, required=False, max_length=10)
    body = VariableIn(many=True, required=False, max_length=20)


class CampaignStatsOut(serializers.Serializer):
    total = serializers.IntegerField(help_text="Recipients of the current run.")
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    replied = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Opted out, no opt-in, invalid number…")
    progress_percent = serializers.IntegerField()


class CampaignOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Campaign.Status.choices)
    number = NumberRefOut()
    template = TemplateRefOut()
    variables = serializers.JSONField(
        help_text="Per template placeholder: where its value comes from."
    )
    header_media_link = serializers.CharField()
    segment = SegmentRefOut(allow_null=True, help_text="Null: every opted-in contact.")
    require_opt_in = serializers.BooleanField()
    schedule = serializers.ChoiceField(choices=Campaign.Schedule.choices)
    scheduled_at = serializers.DateTimeField(allow_null=True)
    send_time = serializers.TimeField(allow_null=True, format="%H:%M")
    weekdays = serializers.ListField(child=serializers.IntegerField(), help_text="0 = Monday")
    time_zone_mode = serializers.ChoiceField(choices=Campaign.TimeZoneMode.choices)
    pace = serializers.ChoiceField(choices=Campaign.Pace.choices)
    rate_per_second = serializers.IntegerField()
    stagger_min_seconds = serializers.IntegerField()
    stagger_max_seconds = serializers.IntegerField()
    quiet_start = serializers.TimeField(allow_null=True, format="%H:%M")
    quiet_end = serializers.TimeField(allow_null=True, format="%H:%M")
    quiet_action = serializers.ChoiceField(choices=Campaign.QuietAction.choices)
    run = serializers.IntegerField(help_text="Current run (recurring campaigns run many times).")
    next_run_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    stats = serializers.SerializerMethodField()

    @extend_schema_field(CampaignStatsOut)
    def get_stats(self, campaign):
        return CampaignStatsOut(_stats(campaign)).data


def _stats(campaign: Campaign) -> dict:
    return {
        "total": campaign.total,
        "sent": campaign.sent,
        "delivered": campaign.delivered,
        "read": campaign.read,
        "replied": campaign.replied,
        "failed": campaign.failed,
        "skipped": campaign.skipped,
        "progress_percent": campaign.progress_percent,
    }


class CampaignCreateIn(ApiIn):
    name = serializers.CharField(max_length=120)
    number = serializers.UUIDField(help_text="The number that sends (GET /numbers/).")
    template = serializers.UUIDField(help_text="An APPROVED template of that number.")
    variables = VariablesIn(required=False)
    header_media_link = serializers.URLField(
        required=False, allow_blank=True, help_text="For templates with a media header."
    )
    segment = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="A segment's id; omit for every opted-in contact.",
    )
    require_opt_in = serializers.BooleanField(default=True)
    schedule = serializers.ChoiceField(choices=Campaign.Schedule.values, default="now")
    scheduled_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="For `at`: when to send."
    )
    send_time = serializers.TimeField(
        required=False, allow_null=True, help_text="For `daily`/`weekly`: time of day."
    )
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        max_length=7,
        help_text="For `weekly`: 0 = Monday.",
    )
    time_zone_mode = serializers.ChoiceField(
        choices=Campaign.TimeZoneMode.values, default="organization"
    )
    pace = serializers.ChoiceField(choices=Campaign.Pace.values, default="rate")
    rate_per_second = serializers.IntegerField(min_value=1, max_value=1000, default=20)
    stagger_min_seconds = serializers.IntegerField(min_value=0, max_value=86400, default=60)
    stagger_max_seconds = serializers.IntegerField(min_value=0, max_value=86400, default=120)
    quiet_start = serializers.TimeField(required=False, allow_null=True)
    quiet_end = serializers.TimeField(required=False, allow_null=True)
    quiet_action = serializers.ChoiceField(choices=Campaign.QuietAction.values, default="defer")


FORM_FIELDS = (
    "name", "header_media_link", "schedule", "scheduled_at", "send_time", "time_zone_mode",
    "pace", "rate_per_second", "stagger_min_seconds", "stagger_max_seconds", "quiet_start",
    "quiet_end", "quiet_action",
)  # fmt: skip


def _form_data(organization, values: dict) -> dict:
    """The campaign page's form data for an API request (ids are resolved in the organization)."""
    number = WhatsAppNumber.objects.filter(organization=organization, code=values["number"]).first()
    if number is None:
        raise exceptions.ValidationError({"number": [_("Unknown number.")]})
    template = MessageTemplate.objects.filter(
        organization=organization, code=values["template"]
    ).first()
    if template is None:
        raise exceptions.ValidationError({"template": [_("Unknown template.")]})
    segment = None
    if values.get("segment"):
        segment = Segment.objects.filter(organization=organization, code=values["segment"]).first()
        if segment is None:
            raise exceptions.ValidationError({"segment": [_("Unknown segment.")]})
    data = {name: values.get(name) for name in FORM_FIELDS if values.get(name) is not None}
    data.update(number=number.pk, template=template.pk, segment=segment.pk if segment else "")
    if values.get("require_opt_in"):
        data["require_opt_in"] = "on"
    data["weekdays"] = values.get("weekdays", [])
    for part, mappings in (values.get("variables") or {}).items():
        for position, mapping in enumerate(mappings):
            prefix = f"var_{part}_{position}"
            data[f"{prefix}_source"] = mapping.get("source", "name")
            data[f"{prefix}_value"] = mapping.get("value", "")
            data[f"{prefix}_fallback"] = mapping.get("fallback", "")
    return data


def _form_errors(form) -> dict:
    details: dict = {}
    for field, errors in form.errors.items():
        name = "variables" if field.startswith("var_") else field
        name = "non_field_errors" if name == "__all__" else name
        details.setdefault(name, []).extend(str(e) for e in errors)
    return details


def _campaigns(organization):
    return selectors.campaign_list(organization)


def _campaign_out(membership, code) -> dict:
    campaign, _can_edit = access.get_campaign_for_member(membership, code)
    return CampaignOut(campaign).data


CAMPAIGN_EXAMPLE = OpenApiExample(
    "Reminder to a segment, tomorrow at 9:00",
    value={
        "name": "Check-up reminder",
        "number": "5b0a8c8e-8f33-4c1b-a7a4-1df4f2b8e8a1",
        "template": "1f5e0c3a-2b51-4b2e-9a4e-8a1f0f6c2d77",
        "segment": "c2a7d0a5-6a49-4a8f-b0c4-3a1f8e2d9b10",
        "variables": {
            "body": [
                {"source": "first_name", "fallback": "there"},
                {"source": "fixed", "value": "Dr. Silva"},
            ]
        },
        "schedule": "at",
        "scheduled_at": "2026-02-01T12:00:00Z",
        "rate_per_second": 20,
        "quiet_start": "21:00",
        "quiet_end": "08:00",
    },
    request_only=True,
)


class CampaignListApi(ApiView):
    """List campaigns (GET) or create a draft (POST; schedule it to start sending)."""

    resource = "campaigns"

    class CampaignFilterIn(serializers.Serializer):
        status = serializers.ChoiceField(choices=Campaign.Status.values, required=False)
        ordering = serializers.ChoiceField(
            choices=["-created_at", "created_at"], default="-created_at"
        )

    @extend_schema(
        operation_id="campaigns_list",
        summary="List campaigns",
        parameters=[CampaignFilterIn, *CURSOR_PARAMETERS],
        responses={200: paginated(CampaignOut), **ERRORS},
    )
    def get(self, request):
        params = self.CampaignFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        data = params.validated_data
        campaigns = _campaigns(self.organization)
        if data.get("status"):
            campaigns = campaigns.filter(status=data["status"])
        ordering = data["ordering"]
        rows, next_url = keyset_page(
            request, campaigns, "created_at", descending=ordering.startswith("-")
        )
        return page_response(request, rows, next_url, CampaignOut)

    @extend_schema(
        operation_id="campaigns_create",
        summary="Create a campaign (draft)",
        description="Validated like the campaign page: the template must be approved and of the "
        "chosen number, `at` needs a future `scheduled_at`, `daily`/`weekly` a `send_time`, the "
        "rate may not exceed the number's throughput. Times of day are in the organization's "
        "time zone. Nothing is sent until `POST …/schedule/`.",
        request=CampaignCreateIn,
        responses={201: CampaignOut, **ERRORS},
        examples=[CAMPAIGN_EXAMPLE],
    )
    def post(self, request):
        data = CampaignCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        form = forms.CampaignForm(
            _form_data(self.organization, data.validated_data), organization=self.organization
        )
        if not form.is_valid():
            raise exceptions.ValidationError(_form_errors(form))
        campaign = form.save(commit=False)
        campaign.created_by = self.actor
        campaign.save()
        return Response(_campaign_out(self.membership, campaign.code), status=201)


class CampaignDetailApi(ApiView):
    resource = "campaigns"

    @extend_schema(
        operation_id="campaigns_retrieve",
        summary="Get a campaign",
        responses={200: CampaignOut, **ERRORS},
    )
    def get(self, request, code):
        return Response(_campaign_out(self.membership, code))


class _CampaignActionApi(ApiView):
    """A state change by the campaign page's service; 409 when the state does not allow it."""

    resource = "campaigns"

    def change(self, campaign: Campaign) -> bool:
        raise NotImplementedError

    def post(self, request, code):
        campaign = access.get_editable_campaign_for_member(self.membership, code)
        if not self.change(campaign):
            raise Conflict(
                _("The campaign cannot do that in its current state (%(status)s).")
                % {"status": Campaign.objects.get(pk=campaign.pk).status},
                code="campaign_state",
            )
        return Response(_campaign_out(self.membership, code))


class CampaignScheduleApi(_CampaignActionApi):
    class ScheduleIn(ApiIn):
        scheduled_at = serializers.DateTimeField(
            required=False,
            help_text="Optional: send once at this moment instead of the campaign's schedule.",
        )

    @extend_schema(
        operation_id="campaigns_schedule",
        summary="Schedule a draft (starts at once for `now`)",
        request=ScheduleIn,
        responses={200: CampaignOut, **STATE_ERRORS},
        examples=[
            OpenApiExample("As created", value={}, request_only=True),
            OpenApiExample(
                "At a moment", value={"scheduled_at": "2026-02-01T12:00:00Z"}, request_only=True
            ),
        ],
    )
    def post(self, request, code):
        return super().post(request, code)

    def change(self, campaign: Campaign) -> bool:
        # The body is read once the campaign is found: another organization's id is a 404
        # whatever the body says.
        data = self.ScheduleIn(data=self.request.data)
        data.is_valid(raise_exception=True)
        if campaign.status != Campaign.Status.DRAFT:
            return False  # only drafts are scheduled (a paused campaign is resumed)
        moment = data.validated_data.get("scheduled_at")
        with transaction.atomic():
            if moment is not None:
                if moment <= timezone.now():
                    raise exceptions.ValidationError(
                        {"scheduled_at": [_("Choose a moment in the future.")]}
                    )
                campaign.schedule, campaign.scheduled_at = Campaign.Schedule.AT, moment
                campaign.save(update_fields=["schedule", "scheduled_at"])
            return services.campaign_launch(campaign=campaign).status == Campaign.Status.SCHEDULED


class CampaignPauseApi(_CampaignActionApi):
    @extend_schema(
        operation_id="campaigns_pause",
        summary="Pause a scheduled or running campaign",
        request=None,
        responses={200: CampaignOut, **STATE_ERRORS},
    )
    def post(self, request, code):
        return super().post(request, code)

    def change(self, campaign):
        return services.campaign_pause(campaign=campaign)


class CampaignResumeApi(_CampaignActionApi):
    @extend_schema(
        operation_id="campaigns_resume",
        summary="Resume a paused campaign",
        request=None,
        responses={200: CampaignOut, **STATE_ERRORS},
    )
    def post(self, request, code):
        return super().post(request, code)

    def change(self, campaign):
        return services.campaign_resume(campaign=campaign)


class CampaignCancelApi(_CampaignActionApi):
    @extend_schema(
        operation_id="campaigns_cancel",
        summary="Cancel a campaign (queued recipients are skipped)",
        request=None,
        responses={200: CampaignOut, **STATE_ERRORS},
    )
    def post(self, request, code):
        return super().post(request, code)

    def change(self, campaign):
        return services.campaign_cancel(campaign=campaign)


class FailureOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=["failed", "skipped"])
    reason = serializers.CharField(help_text="opted_out, no_opt_in, send_error…")
    error_code = serializers.IntegerField(allow_null=True, help_text="WhatsApp's error code.")
    count = serializers.IntegerField(source="n")


class CampaignStatsApi(ApiView):
    resource = "campaigns"

    class CampaignStatsDetailOut(CampaignStatsOut):
        status = serializers.ChoiceField(choices=Campaign.Status.choices)
        run = serializers.IntegerField()
        audience = serializers.IntegerField(help_text="Contacts the audience matches right now.")
        failures = FailureOut(many=True, help_text="Failed and skipped recipients by reason.")

    @extend_schema(
        operation_id="campaigns_stats",
        summary="A campaign's delivery figures",
        description="Counters of the current run (sent counts delivered, read and replied "
        "ones), with failures and skips grouped by reason.",
        responses={200: CampaignStatsDetailOut, **ERRORS},
    )
    def get(self, request, code):
        campaign, _can_edit = access.get_campaign_for_member(self.membership, code)
        services.campaign_counters_refresh(campaign.pk)
        campaign.refresh_from_db()
        failures = FailureOut(selectors.campaign_failures(campaign), many=True).data
        return Response(
            {
                **_stats(campaign),
                "status": campaign.status,
                "run": campaign.run,
                "audience": selectors.audience_contacts(campaign).count(),
                "failures": failures,
            }
        )


class RecipientOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    contact = ContactRefOut()
    to = serializers.CharField()
    run = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CampaignRecipient.Status.choices)
    reason = serializers.CharField(help_text="Why it failed or was skipped.")
    error_code = serializers.IntegerField(allow_null=True)
    error_detail = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    replied_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class CampaignRecipientsApi(ApiView):
    resource = "campaigns"

    class RecipientFilterIn(serializers.Serializer):
        status = serializers.ChoiceField(choices=CampaignRecipient.Status.values, required=False)
        run = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
        ordering = serializers.ChoiceField(
            choices=["-created_at", "created_at"], default="-created_at"
        )

    @extend_schema(
        operation_id="campaigns_recipients_list",
        summary="List a campaign's recipients",
        parameters=[RecipientFilterIn, *CURSOR_PARAMETERS],
        responses={200: paginated(RecipientOut), **ERRORS},
    )
    def get(self, request, code):
        campaign, _can_edit = access.get_campaign_for_member(self.membership, code)
        params = self.RecipientFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        data = params.validated_data
        recipients = selectors.campaign_recipients(campaign, data.get("status", ""))
        if data.get("run"):
            recipients = recipients.filter(run=data["run"])
        rows, next_url = keyset_page(
            request,
            recipients,
            "id",
            descending=data["ordering"].startswith("-"),
            is_datetime=False,
        )
        return page_response(request, rows, next_url, RecipientOut)


# --- Segments ---------------------------------------------------------------------------------

ATTRIBUTE_KEY = r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$"  # no "__": never a query lookup


class SegmentFiltersIn(serializers.Serializer):
    class EngagementIn(serializers.Serializer):
        state = serializers.ChoiceField(choices=list(selectors.ENGAGEMENT))
        campaign = serializers.UUIDField(
            required=False, help_text="Only this campaign's recipients."
        )

    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=20
    )
    exclude_tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=20
    )
    attributes = serializers.DictField(
        child=serializers.CharField(max_length=200), required=False, help_text="Exact values."
    )
    opt_in = serializers.ChoiceField(choices=Contact.OptIn.values, required=False)
    stages = serializers.ListField(
        child=serializers.ChoiceField(choices=Contact.Stage.choices), required=False, max_length=10
    )
    inbound_after = serializers.DateField(required=False, help_text="Wrote on or after.")
    inbound_before = serializers.DateField(required=False, help_text="Silent since.")
    engagement = EngagementIn(required=False)

    def validate_attributes(self, value):
        field = serializers.RegexField(ATTRIBUTE_KEY, max_length=60)
        for key in value:
            try:
                field.run_validation(key)
            except exceptions.ValidationError as error:
                raise exceptions.ValidationError(
                    _("“%(key)s” is not a valid attribute name.") % {"key": key[:60]}
                ) from error
        return value


def _stored_filters(validated: dict) -> dict:
    """Validated ``SegmentFiltersIn`` data as ``Segment.filters`` stores it (JSON)."""
    filters = dict(validated)
    for name in ("inbound_after", "inbound_before"):
        if filters.get(name):
            filters[name] = filters[name].isoformat()
    if filters.get("engagement"):
        filters["engagement"] = dict(filters["engagement"])
        if filters["engagement"].get("campaign"):
            filters["engagement"]["campaign"] = str(filters["engagement"]["campaign"])
    return filters


class SegmentOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Segment.Kind.choices)
    filters = serializers.JSONField(help_text="The saved filter (kind `dynamic`).")
    contact_count = serializers.SerializerMethodField(
        help_text="Contacts it matches right now (counted live)."
    )
    created_at = serializers.DateTimeField()

    def get_contact_count(self, segment) -> int:
        return selectors.segment_contacts(segment).count()


class SegmentCreateIn(ApiIn):
    name = serializers.CharField(max_length=120)
    kind = serializers.ChoiceField(choices=Segment.Kind.values, default="dynamic")
    filters = SegmentFiltersIn(required=False)
    contacts = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        max_length=STATIC_CONTACTS_MAX,
        help_text="Kind `static`: the contacts' ids.",
    )


class SegmentUpdateIn(ApiIn):
    name = serializers.CharField(required=False, max_length=120)
    filters = SegmentFiltersIn(required=False, help_text="Replaces the filter (kind `dynamic`).")
    add_contacts = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=STATIC_CONTACTS_MAX
    )
    remove_contacts = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=STATIC_CONTACTS_MAX
    )


def _segment_in(organization, code) -> Segment:
    return get_object_or_404(Segment, organization=organization, code=code)


def _check_kind(kind: str, data: dict) -> None:
    static = kind == Segment.Kind.STATIC
    if static and data.get("filters"):
        raise exceptions.ValidationError({"filters": [_("A static list has no filter.")]})
    for name in ("contacts", "add_contacts", "remove_contacts"):
        if not static and data.get(name):
            raise exceptions.ValidationError(
                {name: [_("Only static lists hold contacts; use filters.")]}
            )


SEGMENT_EXAMPLE = OpenApiExample(
    "Implant leads silent for a month",
    value={
        "name": "Implant leads to re-engage",
        "kind": "dynamic",
        "filters": {
            "tags": ["implant"],
            "opt_in": "opted_in",
            "stages": ["lead"],
            "inbound_before": "2026-01-01",
        },
    },
    request_only=True,
)


class SegmentListApi(ApiView):
    """List segments (GET) or create one (POST): a saved filter or a static list."""

    resource = "segments"

    class SegmentFilterIn(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Segment.Kind.values, required=False)
        q = serializers.CharField(required=False, max_length=100, help_text="Name contains.")
        ordering = serializers.ChoiceField(
            choices=["name", "-name", "-created_at", "created_at"], default="name"
        )

    @extend_schema(
        operation_id="segments_list",
        summary="List segments",
        parameters=[SegmentFilterIn, *CURSOR_PARAMETERS],
        responses={200: paginated(SegmentOut), **ERRORS},
    )
    def get(self, request):
        params = self.SegmentFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        data = params.validated_data
        segments = Segment.objects.filter(organization=self.organization)
        if data.get("kind"):
            segments = segments.filter(kind=data["kind"])
        if data.get("q", "").strip():
            segments = segments.filter(name__icontains=data["q"].strip())
        ordering = data["ordering"]
        field = ordering.lstrip("-")
        rows, next_url = keyset_page(
            request,
            segments,
            field,
            descending=ordering.startswith("-"),
            is_datetime=field == "created_at",
        )
        return page_response(request, rows, next_url, SegmentOut)

    @extend_schema(
        operation_id="segments_create",
        summary="Create a segment",
        request=SegmentCreateIn,
        responses={201: SegmentOut, **ERRORS},
        examples=[
            SEGMENT_EXAMPLE,
            OpenApiExample(
                "Static list",
                value={
                    "name": "VIP patients",
                    "kind": "static",
                    "contacts": ["7d1c9f0e-2a4b-4c5d-8e6f-0a1b2c3d4e5f"],
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request):
        data = SegmentCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        _check_kind(values["kind"], values)
        with transaction.atomic():
            segment = services.segment_save(
                organization=self.organization,
                segment=None,
                name=values["name"],
                kind=values["kind"],
                filters=_stored_filters(values.get("filters") or {}),
            )
            if values.get("contacts"):
                services.segment_add_contacts(segment=segment, codes=values["contacts"])
        return Response(SegmentOut(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailApi(ApiView):
    resource = "segments"

    @extend_schema(
        operation_id="segments_retrieve",
        summary="Get a segment with its live count",
        responses={200: SegmentOut, **ERRORS},
    )
    def get(self, request, code):
        return Response(SegmentOut(_segment_in(self.organization, code)).data)

    @extend_schema(
        operation_id="segments_update",
        summary="Rename a segment, change its filter or its contacts",
        request=SegmentUpdateIn,
        responses={200: SegmentOut, **ERRORS},
        examples=[
            OpenApiExample(
                "New filter",
                value={"filters": {"tags": ["implant"], "opt_in": "opted_in"}},
                request_only=True,
            ),
            OpenApiExample(
                "Static list members",
                value={"add_contacts": ["7d1c9f0e-2a4b-4c5d-8e6f-0a1b2c3d4e5f"]},
                request_only=True,
            ),
        ],
    )
    def patch(self, request, code):
        segment = _segment_in(self.organization, code)
        data = SegmentUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        _check_kind(segment.kind, values)
        filters = segment.filters
        if "filters" in values:
            filters = _stored_filters(values["filters"] or {})
        with transaction.atomic():
            services.segment_save(
                organization=self.organization,
                segment=segment,
                name=values.get("name", segment.name),
                kind=segment.kind,
                filters=filters,
            )
            if values.get("add_contacts"):
                services.segment_add_contacts(segment=segment, codes=values["add_contacts"])
            if values.get("remove_contacts"):
                segment.contacts.remove(
                    *Contact.objects.filter(
                        organization=self.organization, code__in=values["remove_contacts"]
                    )
                )
        return Response(SegmentOut(_segment_in(self.organization, code)).data)

    @extend_schema(
        operation_id="segments_delete",
        summary="Delete a segment (409 while campaigns use it)",
        responses={204: None, 409: ErrorBody, **ERRORS},
    )
    def delete(self, request, code):
        segment = _segment_in(self.organization, code)
        if segment.campaigns.exists():
            raise Conflict(
                _("Campaigns use this segment; it cannot be deleted."), code="segment_in_use"
            )
        segment.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
