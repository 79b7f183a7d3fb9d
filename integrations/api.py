"""Integrator API for WhatsApp numbers and message templates (see ``accounts.api_auth``)."""

from datetime import timedelta

import requests
from django.db.models import Count, Max, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from accounts.api_auth import ApiIn, ApiView, ErrorBody, Unprocessable, query_data
from integrations import outgoing, services
from integrations.errors import IntegrationError
from integrations.models import (
    MessageTemplate,
    WebhookEvent,
    WebhookSubscription,
    WhatsAppNumber,
)

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


def _number_in(organization, code) -> WhatsAppNumber:
    return get_object_or_404(WhatsAppNumber, organization=organization, code=code)


class NumberOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    display_phone_number = serializers.CharField()
    provider = serializers.ChoiceField(choices=WhatsAppNumber.Provider.choices)
    quality_rating = serializers.CharField()
    messaging_limit = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class NumberListApi(ApiView):
    resource = "numbers"

    class NumberListOut(serializers.Serializer):
        results = NumberOut(many=True)

    @extend_schema(
        operation_id="numbers_list",
        summary="List WhatsApp numbers",
        responses={200: NumberListOut, **ERRORS},
    )
    def get(self, request):
        numbers = WhatsAppNumber.objects.filter(organization=self.organization).order_by(
            "name", "id"
        )
        return Response({"results": NumberOut(numbers, many=True).data})


class NumberHealthApi(ApiView):
    """What Meta last told us about the number, and how its traffic went in the last 24 hours."""

    resource = "numbers"

    class NumberHealthOut(serializers.Serializer):
        number = NumberOut()
        last_webhook_at = serializers.DateTimeField(allow_null=True)
        unprocessed_webhooks = serializers.IntegerField()
        sent_24h = serializers.IntegerField()
        failed_24h = serializers.IntegerField()
        pending = serializers.IntegerField()

    @extend_schema(
        operation_id="numbers_health",
        summary="Number health",
        responses={200: NumberHealthOut, **ERRORS},
    )
    def get(self, request, code):
        number = _number_in(self.organization, code)
        since = timezone.now() - timedelta(hours=24)
        webhooks = WebhookEvent.objects.filter(number=number).aggregate(
            last=Max("received_at"), unprocessed=Count("id", filter=Q(processed_at__isnull=True))
        )
        traffic = number.messages.filter(direction="out").aggregate(
            sent=Count("id", filter=Q(sent_at__gte=since)),
            failed=Count("id", filter=Q(failed_at__gte=since)),
            pending=Count("id", filter=Q(status="pending")),
        )
        return Response(
            {
                "number": NumberOut(number).data,
                "last_webhook_at": serializers.DateTimeField().to_representation(webhooks["last"])
                if webhooks["last"]
                else None,
                "unprocessed_webhooks": webhooks["unprocessed"],
                "sent_24h": traffic["sent"],
                "failed_24h": traffic["failed"],
                "pending": traffic["pending"],
            }
        )


class TemplateOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    number = serializers.UUIDField(source="number.code")
    name = serializers.CharField()
    language = serializers.CharField()
    category = serializers.CharField()
    status = serializers.CharField(help_text="APPROVED, PENDING, REJECTED, PAUSED, DELETED…")
    components = serializers.JSONField()
    updated_at = serializers.DateTimeField()


class TemplateListApi(ApiView):
    resource = "templates"

    class TemplateFilterIn(serializers.Serializer):
        number = serializers.UUIDField(required=False)
        status = serializers.CharField(required=False, max_length=32)
        name = serializers.CharField(required=False, max_length=512)

    class TemplateListOut(serializers.Serializer):
        results = TemplateOut(many=True)

    @extend_schema(
        operation_id="templates_list",
        summary="List message templates",
        parameters=[TemplateFilterIn],
        responses={200: TemplateListOut, **ERRORS},
    )
    def get(self, request):
        params = self.TemplateFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        templates = MessageTemplate.objects.filter(organization=self.organization).select_related(
            "number"
        )
        data = params.validated_data
        if data.get("number"):
            templates = templates.filter(number__code=data["number"])
        if data.get("status"):
            templates = templates.filter(status__iexact=data["status"])
        if data.get("name"):
            templates = templates.filter(name=data["name"])
        templates = templates.order_by("name", "language", "id")[:1000]
        return Response({"results": TemplateOut(templates, many=True).data})


class TemplateSyncApi(ApiView):
    resource = "templates"
    throttle_scope = "sync"

    class TemplateSyncOut(serializers.Serializer):
        synced = serializers.IntegerField(
            help_text="Templates seen in the WhatsApp Business Account."
        )

    @extend_schema(
        operation_id="templates_sync",
        summary="Sync a number's templates from WhatsApp",
        request=None,
        responses={200: TemplateSyncOut, 422: ErrorBody, 429: ErrorBody, **ERRORS},
    )
    def post(self, request, code):
        number = _number_in(self.organization, code)
        try:
            synced = services.templates_sync(number=number)
        except IntegrationError as error:
            raise Unprocessable(error.message, code="whatsapp_error") from error
        except requests.RequestException as error:  # e.g. an unreachable sandbox
            raise Unprocessable(str(error)[:200], code="whatsapp_unreachable") from error
        return Response({"synced": synced})


# --- Webhook subscriptions (REST hooks for Zapier/n8n-style tools) ---------------------------


class WebhookOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    url = serializers.URLField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class WebhookListApi(ApiView):
    """List subscriptions (GET) or subscribe a URL (POST; the signing secret is shown once)."""

    resource = "webhooks"

    class WebhookListOut(serializers.Serializer):
        results = WebhookOut(many=True)

    class WebhookCreateIn(ApiIn):
        url = serializers.URLField(max_length=500)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=WebhookSubscription.Event.values),
            min_length=1,
            max_length=len(WebhookSubscription.Event.values),
        )
        description = serializers.CharField(required=False, allow_blank=True, max_length=200)

    class WebhookCreatedOut(WebhookOut):
        secret = serializers.CharField(
            help_text="Signing secret: verify X-Porfin-Signature with it. Shown only here."
        )

    @extend_schema(
        operation_id="webhooks_list",
        summary="List webhook subscriptions",
        responses={200: WebhookListOut, **ERRORS},
    )
    def get(self, request):
        subscriptions = WebhookSubscription.objects.filter(organization=self.organization)
        return Response(
            {"results": WebhookOut(subscriptions.order_by("-created_at", "-id"), many=True).data}
        )

    @extend_schema(
        operation_id="webhooks_create",
        summary="Subscribe a URL to events",
        description=(
            "Deliveries are signed: `X-Porfin-Signature: v1=<hex HMAC-SHA256(secret, "
            '"<X-Porfin-Timestamp>.<raw body>")>`. Private and loopback addresses are refused.'
        ),
        request=WebhookCreateIn,
        responses={201: WebhookCreatedOut, **ERRORS},
        examples=[
            OpenApiExample(
                "New messages",
                value={"url": "https://hooks.example.com/porfin", "events": ["message.received"]},
                request_only=True,
            )
        ],
    )
    def post(self, request):
        data = self.WebhookCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            subscription = outgoing.subscription_create(
                organization=self.organization,
                url=data.validated_data["url"],
                events=data.validated_data["events"],
                description=data.validated_data.get("description", ""),
            )
        except outgoing.UnsafeURL as error:
            raise exceptions.ValidationError({"url": [str(error)]}) from error
        return Response(self.WebhookCreatedOut(subscription).data, status=201)


class WebhookDetailApi(ApiView):
    resource = "webhooks"

    @extend_schema(
        operation_id="webhooks_delete",
        summary="Unsubscribe (delete a webhook subscription)",
        responses={204: None, **ERRORS},
    )
    def delete(self, request, code):
        subscription = get_object_or_404(
            WebhookSubscription, organization=self.organization, code=code
        )
        subscription.delete()
        return Response(status=204)
