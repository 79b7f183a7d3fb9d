"""The integrator API's URL table: ``/api/v1/…`` (mounted under ``api/`` in ``config/urls.py``),
plus the OpenAPI 3 schema (``/api/schema/``) and interactive docs (``/api/docs/``)."""

from pathlib import Path

import drf_spectacular_sidecar
from django.http import JsonResponse
from django.urls import include, path, re_path, reverse
from django.utils.translation import gettext_lazy
from django.views import defaults
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api_auth import error_body
from appointments import api as appointments
from assistants import api as assistants
from campaigns import api as campaigns
from campaigns import api_contacts as contacts
from campaigns import api_drips as drips
from flows import api as flows
from inbox import api as inbox
from integrations import api as integrations
from reports import api as reports

v1 = [
    # Chats and messages first: the calls integrators make most are matched first.
    path("chats/", inbox.ChatListApi.as_view(), name="api_chats"),
    path("chats/<uuid:code>/", inbox.ChatDetailApi.as_view(), name="api_chat"),
    path("chats/<uuid:code>/assign/", inbox.ChatAssignApi.as_view(), name="api_chat_assign"),
    path("chats/<uuid:code>/status/", inbox.ChatStatusApi.as_view(), name="api_chat_status"),
    path("chats/<uuid:code>/ai/", inbox.ChatAiApi.as_view(), name="api_chat_ai"),
    path("chats/<uuid:code>/tags/", inbox.ChatTagsApi.as_view(), name="api_chat_tags"),
    path("chats/<uuid:code>/messages/", inbox.ChatMessagesApi.as_view(), name="api_chat_messages"),
    path("messages/", inbox.MessageSendApi.as_view(), name="api_messages_send"),
    path("numbers/", integrations.NumberListApi.as_view(), name="api_numbers"),
    path(
        "numbers/<uuid:code>/health/",
        integrations.NumberHealthApi.as_view(),
        name="api_number_health",
    ),
    path(
        "numbers/<uuid:code>/templates/sync/",
        integrations.TemplateSyncApi.as_view(),
        name="api_templates_sync",
    ),
    path("templates/", integrations.TemplateListApi.as_view(), name="api_templates"),
    path("contacts/", contacts.ContactListApi.as_view(), name="api_contacts"),
    path("contacts/upsert/", contacts.ContactUpsertApi.as_view(), name="api_contact_upsert"),
    path("contacts/import/", contacts.ContactImportApi.as_view(), name="api_contact_import"),
    path("contacts/<uuid:code>/", contacts.ContactDetailApi.as_view(), name="api_contact"),
    path(
        "contacts/<uuid:code>/opt-in/",
        contacts.ContactOptInApi.as_view(),
        name="api_contact_opt_in",
    ),
    path(
        "contacts/<uuid:code>/opt-out/",
        contacts.ContactOptOutApi.as_view(),
        name="api_contact_opt_out",
    ),
    path(
        "contacts/<uuid:code>/export/",
        reports.ContactExportApi.as_view(),
        name="api_contact_export",
    ),
    path(
        "contacts/<uuid:code>/erase/", reports.ContactEraseApi.as_view(), name="api_contact_erase"
    ),
    path("services/", appointments.ServiceListApi.as_view(), name="api_services"),
    path("professionals/", appointments.ProfessionalListApi.as_view(), name="api_professionals"),
    path("availability/", appointments.AvailabilityApi.as_view(), name="api_availability"),
    path("appointments/", appointments.AppointmentListApi.as_view(), name="api_appointments"),
    path(
        "appointments/<uuid:code>/",
        appointments.AppointmentDetailApi.as_view(),
        name="api_appointment",
    ),
    path(
        "appointments/<uuid:code>/reschedule/",
        appointments.AppointmentRescheduleApi.as_view(),
        name="api_appointment_reschedule",
    ),
    path(
        "appointments/<uuid:code>/cancel/",
        appointments.AppointmentCancelApi.as_view(),
        name="api_appointment_cancel",
    ),
    path("media/", inbox.MediaUploadApi.as_view(), name="api_media_upload"),
    path("webhooks/", integrations.WebhookListApi.as_view(), name="api_webhooks"),
    path("webhooks/<uuid:code>/", integrations.WebhookDetailApi.as_view(), name="api_webhook"),
    path("assistants/", assistants.AssistantListApi.as_view(), name="api_assistants"),
    path("assistants/<uuid:code>/", assistants.AssistantDetailApi.as_view(), name="api_assistant"),
    path(
        "assistants/<uuid:code>/sources/",
        assistants.AssistantSourceListApi.as_view(),
        name="api_assistant_sources",
    ),
    path(
        "assistants/<uuid:code>/sources/<uuid:source_code>/",
        assistants.AssistantSourceDetailApi.as_view(),
        name="api_assistant_source",
    ),
    path(
        "assistants/<uuid:code>/ask/",
        assistants.AssistantAskApi.as_view(),
        name="api_assistant_ask",
    ),
    path("flows/", flows.FlowListApi.as_view(), name="api_flows"),
    path("flows/<uuid:code>/", flows.FlowDetailApi.as_view(), name="api_flow"),
    path("flows/<uuid:code>/export/", flows.FlowExportApi.as_view(), name="api_flow_export"),
    path("flows/<uuid:code>/start/", flows.FlowStartApi.as_view(), name="api_flow_start"),
    path("campaigns/", campaigns.CampaignListApi.as_view(), name="api_campaigns"),
    path("campaigns/<uuid:code>/", campaigns.CampaignDetailApi.as_view(), name="api_campaign"),
    path(
        "campaigns/<uuid:code>/schedule/",
        campaigns.CampaignScheduleApi.as_view(),
        name="api_campaign_schedule",
    ),
    path(
        "campaigns/<uuid:code>/pause/",
        campaigns.CampaignPauseApi.as_view(),
        name="api_campaign_pause",
    ),
    path(
        "campaigns/<uuid:code>/resume/",
        campaigns.CampaignResumeApi.as_view(),
        name="api_campaign_resume",
    ),
    path(
        "campaigns/<uuid:code>/cancel/",
        campaigns.CampaignCancelApi.as_view(),
        name="api_campaign_cancel",
    ),
    path(
        "campaigns/<uuid:code>/stats/",
        campaigns.CampaignStatsApi.as_view(),
        name="api_campaign_stats",
    ),
    path(
        "campaigns/<uuid:code>/recipients/",
        campaigns.CampaignRecipientsApi.as_view(),
        name="api_campaign_recipients",
    ),
    path("segments/", campaigns.SegmentListApi.as_view(), name="api_segments"),
    path("segments/<uuid:code>/", campaigns.SegmentDetailApi.as_view(), name="api_segment"),
    path(
        "drips/<uuid:code>/enrolments/",
        drips.DripEnrolmentCreateApi.as_view(),
        name="api_drip_enrolments",
    ),
    path("reports/summary/", reports.ReportSummaryApi.as_view(), name="api_reports_summary"),
]

DESCRIPTION = """
Drive Porfin from your clinic system, CRM or automation tool.

**Authentication.** Create a key in *Settings › API keys* (admins; shown once) and send it as
`Authorization: Bearer pfk_…`. Each key belongs to one organization and reaches only its data,
with read or write scopes per resource (write implies read). Revoked keys stop at once.

**Conventions.** JSON in and out (unknown fields and values of another JSON type are refused,
not ignored); ids are UUIDs; phones are E.164 (`+5511999990000`); times are ISO-8601 in UTC
(`2026-01-31T12:00:00Z`). Lists are paginated with an opaque cursor: follow `next` until it is
null (`limit` 1–200).

**Errors** always look like `{"error": {"code", "message", "details"}}`: 400 invalid fields
(`details` per field), 401 missing or revoked key, 403 missing scope, 404 not found (also for
other organizations' objects, and any URL under `/api/` that names nothing), 409 conflict,
413 body too large (1 MB JSON, 16 MB media), 415 body not JSON, 422 not possible now (e.g.
free text outside WhatsApp's 24-hour window: send a template), 429 too many requests (wait
`Retry-After` seconds).

**Scopes.** `numbers`, `templates`, `contacts`, `chats`, `messages`, `media`, `webhooks`,
`assistants`, `campaigns`, `segments`, `reports` and `privacy` (a contact's LGPD export needs
`privacy:read`, its erasure `privacy:write`; both are recorded in the audit log).

**Rate limits** per key: 600 reads, 300 writes and 100 message sends per minute, 10 template
syncs and 60 questions to assistants per minute; 10 failed authentications per minute per
address.

**Retries.** Send an `Idempotency-Key` header with message sends: a retry with the same key
replays the first answer (header `Idempotent-Replayed: true`) and never sends twice.

**Webhooks.** Subscribe URLs in *Settings › Webhooks* or with `POST /api/v1/webhooks/`. Each
POST carries `X-Porfin-Timestamp` and `X-Porfin-Signature: v1=<hex HMAC-SHA256(secret,
"<timestamp>.<raw body>")>`; events carry an `id`, a growing `sequence` and, for chats, the
chat's own `sequence`. Non-2xx answers are retried with backoff for about eight hours.

**Events** (`type`, and what `data` holds; `chat` is the chat as in `GET /chats/{id}/`, with
its `sequence`):

| type | data |
|---|---|
| `message.received`, `message.sent`, `message.status` | `message`, `chat` (and `previous_status` for statuses) |
| `chat.created`, `chat.assigned`, `chat.resolved` | `chat`, `actor` (`{email, name}` or null) |
| `contact.created`, `contact.opted_out` | `contact` |
| `campaign.completed` | `campaign`, `stats` |
| `assistant.handoff` | `assistant`, `reason`, `chat` |
| `analysis.completed` | `analysis`, `assistant`, `chat` |

`campaign.completed` is sent when a run has finished sending (every recipient sent, failed or
skipped); a recurring campaign sends it after every run, with `status` `scheduled` and its
`next_run_at`:

```json
{"campaign": {"id": "…", "name": "Check-up reminder", "status": "completed", "run": 1,
  "recurring": false, "started_at": "2026-02-01T12:00:00Z", "completed_at": "2026-02-01T12:04:10Z",
  "next_run_at": null, "number": {"id": "…", "display_phone_number": "+55 11 4000-0000"},
  "template": {"name": "checkup_reminder", "language": "pt_BR"},
  "segment": {"id": "…", "name": "Implant leads"}},
 "stats": {"total": 500, "sent": 480, "delivered": 470, "read": 300, "replied": 61,
  "failed": 8, "skipped": 12}}
```

`assistant.handoff` is sent when an assistant hands a chat over to the team (the customer
asked for a person, a sensitive topic, low confidence, too many turns…):

```json
{"assistant": {"id": "…", "name": "Sofia"}, "reason": "the customer asked for a person",
 "chat": {"id": "…", "status": "open", "sequence": 12, "ai_enabled": false, "…": "…"}}
```

`analysis.completed` is sent when a conversation analysis is stored (after a chat is resolved,
or on request in the inbox):

```json
{"analysis": {"id": "…", "summary": "Wants to book a cleaning next week.",
  "intent": "agendar", "sentiment": "positive", "lead_score": 8,
  "lead_score_reason": "asked for prices and dates", "next_step": "call to confirm",
  "follow_up_on": "2026-02-03", "offline": false, "created_at": "2026-02-01T12:00:00Z"},
 "assistant": {"id": "…", "name": "Sofia"}, "chat": {"id": "…", "sequence": 15, "…": "…"}}
```
"""


class SchemaView(SpectacularAPIView):
    custom_settings = {"DESCRIPTION": DESCRIPTION}


SWAGGER_UI = (
    Path(drf_spectacular_sidecar.__file__).parent / "static/drf_spectacular_sidecar/swagger-ui-dist"
)


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI from the vendored swagger-ui-dist files (no CDN)."""

    @staticmethod
    def _swagger_ui_resource(filename):
        return reverse("api_docs_asset", args=[filename])

    @staticmethod
    def _swagger_ui_favicon():
        return reverse("api_docs_asset", args=["favicon-32x32.png"])


@require_GET
@cache_control(public=True, max_age=86400)
def docs_asset(request, name):
    return serve(request, name, document_root=SWAGGER_UI)


# --- Errors outside the API views: JSON under /api/, Django's pages elsewhere ------------------

ERROR_CODES = {
    400: ("bad_request", gettext_lazy("The request is malformed.")),
    403: ("permission_denied", gettext_lazy("You do not have permission to perform this action.")),
    404: ("not_found", gettext_lazy("Not found.")),
    500: ("server_error", gettext_lazy("Something went wrong on our side; it has been logged.")),
}


def _api_error(request, status: int) -> JsonResponse | None:
    if not request.path.startswith("/api/"):
        return None
    code, message = ERROR_CODES[status]
    return JsonResponse(error_body(code=code, message=str(message)), status=status)


@csrf_exempt
def not_found(request, exception=None):
    """Any /api/ URL no view answers (``/api/v1/chats/not-a-uuid/`` included): the API's
    404 body, whatever the method, rather than Django's HTML page."""
    return _api_error(request, 404) or defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    return _api_error(request, 400) or defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    return _api_error(request, 403) or defaults.permission_denied(request, exception)


def server_error(request):
    return _api_error(request, 500) or defaults.server_error(request)


urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SchemaView.as_view(), name="api_schema"),
    path("docs/", SwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("docs/assets/<str:name>", docs_asset, name="api_docs_asset"),
    # Last: paths ending in a slash that nothing above matched (any characters, newlines
    # too). Others still get Django's APPEND_SLASH redirect (to here when nothing matches with
    # the slash either).
    re_path(r"^[\s\S]*/\Z", not_found),
]
