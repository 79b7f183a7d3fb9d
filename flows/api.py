"""Integrator API for flows: list, read, export, and start a flow for a contact.

Starting needs the contact's 24-hour window open (a flow's first step is a free-form message);
outside it, send a template whose quick-reply button payload is ``flow:<flow id>`` — the tap
starts the flow. The same one-run-per-chat rule as triggers applies (409 when one is running).
"""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.api_auth import (
    CURSOR_PARAMETERS,
    ApiView,
    Conflict,
    ErrorBody,
    idempotent,
    keyset_page,
    page_response,
    paginated,
)
from flows import runtime, services
from flows.models import Flow, FlowRun
from inbox import services as inbox_services
from inbox.api import ContactRefOut
from inbox.models import Chat, Contact
from integrations.models import WhatsAppNumber

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


class FlowOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    description = serializers.CharField()
    active = serializers.BooleanField(source="is_active")
    published_version = serializers.IntegerField(
        source="published.number", allow_null=True, default=None
    )
    revision = serializers.IntegerField(
        help_text="The draft's revision (editors' optimistic concurrency)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class FlowDetailOut(FlowOut):
    definition = serializers.JSONField(
        source="published.definition", default=None, help_text="The live version's nodes and edges."
    )


class RunOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    status = serializers.ChoiceField(choices=FlowRun.Status.choices)
    version = serializers.IntegerField(source="version.number")
    chat = serializers.UUIDField(source="chat.code")
    contact = ContactRefOut(source="chat.contact")
    started_at = serializers.DateTimeField()


def _flows(organization):
    return Flow.objects.filter(organization=organization).select_related("published")


class FlowListApi(ApiView):
    """The organization's flows."""

    resource = "flows"

    @extend_schema(
        operation_id="flows_list",
        summary="List flows",
        parameters=CURSOR_PARAMETERS,
        responses={200: paginated(FlowOut), **ERRORS},
    )
    def get(self, request):
        rows, next_url = keyset_page(
            request, _flows(self.organization), "created_at", descending=True
        )
        return page_response(request, rows, next_url, FlowOut)


class FlowDetailApi(ApiView):
    resource = "flows"

    @extend_schema(
        operation_id="flows_read", summary="Read a flow", responses={200: FlowDetailOut, **ERRORS}
    )
    def get(self, request, code):
        flow = get_object_or_404(_flows(self.organization), code=code)
        return Response(FlowDetailOut(flow).data)


class FlowExportApi(ApiView):
    resource = "flows"

    @extend_schema(
        operation_id="flows_export",
        summary="Export a flow",
        description="The draft as the JSON file the flow page exports and imports "
        "(`porfin_flow` is the schema version).",
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request, code):
        flow = get_object_or_404(_flows(self.organization), code=code)
        return Response(services.flow_export(flow=flow))


class FlowStartApi(ApiView):
    """Start the flow's live version for a contact, in the chat with one of the numbers."""

    resource = "flows"
    throttle_scope = "send"

    class StartIn(serializers.Serializer):
        contact = serializers.UUIDField(help_text="The contact's id.")
        number = serializers.UUIDField(
            required=False, help_text="Which of your numbers; default: the contact's latest chat's."
        )
        variables = serializers.DictField(
            child=serializers.CharField(max_length=1000, allow_blank=True),
            required=False,
            help_text="Flow variables ({{vars.name}}) to start with.",
        )

    @extend_schema(
        operation_id="flows_start",
        summary="Start a flow for a contact",
        request=StartIn,
        responses={202: RunOut, 409: ErrorBody, **ERRORS},
    )
    def post(self, request, code):
        flow = get_object_or_404(_flows(self.organization), code=code)
        params = self.StartIn(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        contact = get_object_or_404(Contact, organization=self.organization, code=data["contact"])
        if data.get("number"):
            number = get_object_or_404(
                WhatsAppNumber, organization=self.organization, code=data["number"]
            )
            chat = inbox_services.chat_for_contact(number=number, contact=contact)
        else:
            chat = Chat.objects.filter(contact=contact).order_by("-last_message_at").first()
            if chat is None:
                raise Conflict(_("The contact has no chat yet; say which number to use."))
        chat = Chat.objects.select_related("contact", "organization").get(pk=chat.pk)
        if not chat.window_is_open:
            raise Conflict(
                _(
                    "The contact's 24-hour window is closed. Send a template whose button "
                    "payload is flow:%(id)s; the tap starts the flow."
                )
                % {"id": flow.code}
            )

        def work():
            try:
                run = runtime.run_start(
                    flow=flow, chat=chat, trigger="api", variables=data.get("variables") or {}
                )
            except runtime.FlowNotStartable as refused:
                raise Conflict(str(refused)) from None
            run = FlowRun.objects.select_related("version", "chat__contact").get(pk=run.pk)
            return Response(RunOut(run).data, status=status.HTTP_202_ACCEPTED)

        return idempotent(request, self.organization, work)
