"""Integrator API for reports and LGPD (see ``accounts.api_auth``): the dashboard's figures for
a period, and a contact's data export (ZIP) and erasure.

The summary reads the same pre-aggregated daily rows as the dashboard (``reports.selectors``),
with the period chosen as on its period picker, in the organization's time zone. Export and
erasure are the contact privacy page's services (``reports.privacy``), recorded in the audit
log like the page's actions (the key's requests carry no person: the actor is empty, the IP
is recorded).
"""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.api_auth import ApiIn, ApiView, ErrorBody, query_data
from inbox.models import Contact
from reports import privacy, selectors, stats
from reports.forms import PeriodForm

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


class PeriodOut(serializers.Serializer):
    start = serializers.DateField(source="first")
    end = serializers.DateField(source="last")
    days = serializers.IntegerField()


class FiguresOut(serializers.Serializer):
    conversations = serializers.IntegerField()
    messages_in = serializers.IntegerField(help_text="Messages received.")
    messages_out = serializers.IntegerField(help_text="Messages sent.")
    new_contacts = serializers.IntegerField()
    first_response_median_seconds = serializers.FloatField(source="frt_median", allow_null=True)
    first_response_p90_seconds = serializers.FloatField(source="frt_p90", allow_null=True)
    resolution_median_seconds = serializers.FloatField(source="resolution_median", allow_null=True)
    resolved = serializers.IntegerField(help_text="Chats resolved.")
    resolved_by_ai = serializers.IntegerField(help_text="Resolved without a person.")
    ai_resolution_share = serializers.FloatField(
        source="ai_share", allow_null=True, help_text="resolved_by_ai / resolved (0–1)."
    )
    handoffs = serializers.IntegerField(help_text="Chats the assistants handed to the team.")
    handoff_rate = serializers.FloatField(allow_null=True, help_text="handoffs / conversations.")
    opt_outs = serializers.IntegerField()
    campaign_sent = serializers.IntegerField()
    campaign_replied = serializers.IntegerField()
    campaign_reply_rate = serializers.FloatField(
        source="campaign_conversion", allow_null=True, help_text="campaign_replied / campaign_sent."
    )
    ai_cost = serializers.DecimalField(
        max_digits=14, decimal_places=6, help_text="Estimated AI cost in USD."
    )
    csat_responses = serializers.IntegerField(help_text="Satisfaction survey answers.")
    csat_average = serializers.FloatField(allow_null=True, help_text="Average score of them.")


class DayOut(serializers.Serializer):
    day = serializers.DateField()
    conversations = serializers.IntegerField()
    messages_in = serializers.IntegerField()
    messages_out = serializers.IntegerField()


class ReportSummaryOut(serializers.Serializer):
    time_zone = serializers.CharField(help_text="Days are counted in this time zone.")
    period = PeriodOut()
    previous_period = PeriodOut(help_text="The period of the same length just before.")
    current = FiguresOut()
    previous = FiguresOut()
    days = DayOut(many=True, help_text="Per day of the period.")


@extend_schema_field({"type": "boolean", "enum": [True]})
class ConfirmField(serializers.BooleanField):
    """A yes that must be given: the schema says only true is accepted."""


class ReportSummaryApi(ApiView):
    """The dashboard's cards for a period, and the same figures for the period before."""

    resource = "reports"

    class PeriodIn(serializers.Serializer):
        period = serializers.ChoiceField(
            choices=["today", "7", "30", "90", "custom"],
            default="30",
            help_text="Last N days including today, or `custom` with start and end.",
        )
        start = serializers.DateField(required=False, help_text="For `custom`.")
        end = serializers.DateField(required=False, help_text="For `custom` (at most a year).")

    @extend_schema(
        operation_id="reports_summary",
        summary="Dashboard figures for a period",
        description="Figures are refreshed from the conversations every few minutes. Times "
        "are in seconds; shares and rates between 0 and 1 (null when there is nothing to "
        "divide by).",
        parameters=[PeriodIn],
        responses={200: ReportSummaryOut, **ERRORS},
        examples=[
            OpenApiExample(
                "Last 7 days",
                value={
                    "time_zone": "America/Sao_Paulo",
                    "period": {"start": "2026-01-25", "end": "2026-01-31", "days": 7},
                    "previous_period": {"start": "2026-01-18", "end": "2026-01-24", "days": 7},
                    "current": {
                        "conversations": 120,
                        "messages_in": 940,
                        "messages_out": 1010,
                        "new_contacts": 38,
                        "first_response_median_seconds": 42.0,
                        "first_response_p90_seconds": 610.5,
                        "resolution_median_seconds": 3540.0,
                        "resolved": 101,
                        "resolved_by_ai": 57,
                        "ai_resolution_share": 0.564,
                        "handoffs": 22,
                        "handoff_rate": 0.183,
                        "opt_outs": 3,
                        "campaign_sent": 500,
                        "campaign_replied": 61,
                        "campaign_reply_rate": 0.122,
                        "ai_cost": "1.284000",
                        "csat_responses": 40,
                        "csat_average": 4.6,
                    },
                    "previous": {"conversations": 98, "...": "same fields"},
                    "days": [
                        {
                            "day": "2026-01-25",
                            "conversations": 15,
                            "messages_in": 120,
                            "messages_out": 131,
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        params = self.PeriodIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        form = PeriodForm(
            {key: str(value) for key, value in params.validated_data.items() if value is not None}
        )
        if not form.is_valid():
            errors = [str(e) for errors in form.errors.values() for e in errors]
            raise exceptions.ValidationError({"period": errors})
        period = form.get_period(stats.local_today(self.organization))
        data = selectors.report(self.organization, period)
        days = [
            {
                "day": day,
                "conversations": figures.conversations,
                "messages_in": figures.messages_in,
                "messages_out": figures.messages_out,
            }
            for day, figures in data["days"]
        ]
        return Response(
            ReportSummaryOut(
                {
                    "time_zone": self.organization.time_zone,
                    "period": period,
                    "previous_period": period.previous,
                    "current": data["current"],
                    "previous": data["previous"],
                    "days": days,
                }
            ).data
        )


# --- LGPD ---------------------------------------------------------------------------------------


def _contact_in(organization, code) -> Contact:
    return get_object_or_404(
        Contact.objects.select_related("organization"), organization=organization, code=code
    )


class ContactExportApi(ApiView):
    resource = "privacy"
    session_requires_edit = True

    def perform_content_negotiation(self, request, force=False):
        """The archive is sent as is; errors are always JSON, whatever ``Accept`` asks for
        (e.g. ``application/zip``)."""
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        operation_id="contacts_export",
        summary="Export everything held about a contact (LGPD)",
        description="A ZIP with `contact.json` (profile, consent history, chats and messages, "
        "campaign sends, analyses) and the media files, as on the contact's privacy page. "
        "Each export is recorded in the audit log. Needs `privacy:read`.",
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            **{(code, "application/json"): body for code, body in ERRORS.items()},
        },
    )
    def get(self, request, code):
        contact = _contact_in(self.organization, code)
        archive = privacy.contact_export(
            contact=contact, actor=self.actor, request=request._request
        )
        response = HttpResponse(archive, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="contact-{contact.code}.zip"'
        return response


class ContactEraseApi(ApiView):
    """Erase a contact's personal data (LGPD), keeping the anonymised rows reports count."""

    resource = "privacy"

    class EraseIn(ApiIn):
        confirm = ConfirmField(help_text="Must be true: erasure cannot be undone.")

        def validate_confirm(self, value):
            if not value:
                raise exceptions.ValidationError(_("Confirm that this cannot be undone."))
            return value

    class ErasedOut(serializers.Serializer):
        contact = serializers.UUIDField(source="contact.code")
        token = serializers.CharField(help_text="The anonymous name the contact now has.")
        erased_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="contacts_erase",
        summary="Erase a contact's personal data (LGPD)",
        description="Removes name, phone, email, attributes, message text and media; keeps "
        "anonymised messages and statistics. Repeating it answers the first erasure. "
        "Recorded in the audit log. Needs `privacy:write`.",
        request=EraseIn,
        responses={200: ErasedOut, **ERRORS},
        examples=[OpenApiExample("Erase", value={"confirm": True}, request_only=True)],
    )
    def post(self, request, code):
        contact = _contact_in(self.organization, code)
        data = self.EraseIn(data=request.data)
        data.is_valid(raise_exception=True)
        erased = privacy.contact_erase(contact=contact, actor=self.actor, request=request._request)
        return Response(self.ErasedOut(erased).data)
