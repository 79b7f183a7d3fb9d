"""The integrator API's URL table: ``/api/v1/…`` (mounted under ``api/`` in ``config/urls.py``),
plus the OpenAPI 3 schema (``/api/schema/``) and interactive docs (``/api/docs/``)."""

from pathlib import Path

import drf_spectacular_sidecar
from django.urls import include, path, reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import api_contacts as contacts
from inbox import api as inbox
from integrations import api as integrations

v1 = [
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
    path("chats/", inbox.ChatListApi.as_view(), name="api_chats"),
    path("chats/<uuid:code>/", inbox.ChatDetailApi.as_view(), name="api_chat"),
    path("chats/<uuid:code>/assign/", inbox.ChatAssignApi.as_view(), name="api_chat_assign"),
    path("chats/<uuid:code>/status/", inbox.ChatStatusApi.as_view(), name="api_chat_status"),
    path("chats/<uuid:code>/ai/", inbox.ChatAiApi.as_view(), name="api_chat_ai"),
    path("chats/<uuid:code>/tags/", inbox.ChatTagsApi.as_view(), name="api_chat_tags"),
    path("chats/<uuid:code>/messages/", inbox.ChatMessagesApi.as_view(), name="api_chat_messages"),
    path("messages/", inbox.MessageSendApi.as_view(), name="api_messages_send"),
    path("media/", inbox.MediaUploadApi.as_view(), name="api_media_upload"),
    path("webhooks/", integrations.WebhookListApi.as_view(), name="api_webhooks"),
    path("webhooks/<uuid:code>/", integrations.WebhookDetailApi.as_view(), name="api_webhook"),
]

DESCRIPTION = """
Drive Porfin from your clinic system, CRM or automation tool.

**Authentication.** Create a key in *Settings › API keys* (admins; shown once) and send it as
`Authorization: Bearer pfk_…`. Each key belongs to one organization and reaches only its data,
with read or write scopes per resource (write implies read). Revoked keys stop at once.

**Conventions.** JSON in and out; ids are UUIDs; phones are E.164 (`+5511999990000`); times
are ISO-8601 in UTC (`2026-01-31T12:00:00Z`). Lists are paginated with an opaque cursor: follow
`next` until it is null (`limit` 1–200).

**Errors** always look like `{"error": {"code", "message", "details"}}`: 400 invalid fields
(`details` per field), 401 missing or revoked key, 403 missing scope, 404 not found (also for
other organizations' objects), 409 conflict, 413 body too large (1 MB JSON, 16 MB media),
422 not possible now (e.g. free text outside WhatsApp's 24-hour window: send a template),
429 too many requests (wait `Retry-After` seconds).

**Rate limits** per key: 600 reads, 300 writes and 100 message sends per minute, 10 template
syncs per minute; 10 failed authentications per minute per address.

**Retries.** Send an `Idempotency-Key` header with message sends: a retry with the same key
replays the first answer (header `Idempotent-Replayed: true`) and never sends twice.

**Webhooks.** Subscribe URLs in *Settings › Webhooks* or with `POST /api/v1/webhooks/`. Each
POST carries `X-Porfin-Timestamp` and `X-Porfin-Signature: v1=<hex HMAC-SHA256(secret,
"<timestamp>.<raw body>")>`; events carry an `id`, a growing `sequence` and, for chats, the
chat's own `sequence`. Non-2xx answers are retried with backoff for about eight hours.
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


urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SchemaView.as_view(), name="api_schema"),
    path("docs/", SwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("docs/assets/<str:name>", docs_asset, name="api_docs_asset"),
]
