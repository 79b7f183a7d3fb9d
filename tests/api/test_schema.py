"""The OpenAPI schema is valid and the API keeps its promises: schemathesis generates requests
for every operation (a few examples each) and checks for server errors and any response,
status code, content type or header the schema does not document."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from assistants import services as assistant_services
from assistants.models import Assistant
from campaigns.models import Segment
from flows import services as flow_services
from integrations import services as channel
from integrations.models import WebhookSubscription
from integrations.whatsapp.sandbox import SandboxServer
from tests.api.helpers import key_for
from tests.base import make_chat, make_org
from tests.campaigns.helpers import make_campaign, make_template

EXAMPLES = 4
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture
def wsgi_app():
    """Our WSGI handler, keeping the test's database connection open between requests (as
    Django's test client does)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def sandbox():
    server = SandboxServer().start()
    channel._registered_with_sandbox.clear()
    with override_settings(SANDBOX_URL=server.url, SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9"):
        yield server
    server.stop()


@pytest.mark.django_db
@override_settings(
    OUTGOING_WEBHOOKS_ALLOW_PRIVATE=False,
    API_THROTTLE_RATES=dict.fromkeys(("read", "write", "send", "sync"), "100000/min"),
)
def test_the_api_conforms_to_its_schema(sandbox, wsgi_app):
    organization, number = make_org("Clínica Schema", "clinica-schema", "444")
    chat = make_chat(organization, number, "5511900000044", "Schema Customer")
    privacy_chat = make_chat(organization, number, "5511900000045", "Schema Privacy")
    secret = key_for(organization)
    subscription = WebhookSubscription.objects.create(
        organization=organization, url="https://hooks.example/porfin", events=["chat.created"]
    )
    assistant = Assistant(organization=organization, name="Schema Bot")
    assistant_services.assistant_save(assistant=assistant, numbers=[number])
    source = assistant_services.knowledge_add(
        assistant=assistant, kind="text", title="Hours", text="Open from 8 to 18."
    )
    segment = Segment.objects.create(organization=organization, name="Nobody", kind="static")
    campaign = make_campaign(organization, number, make_template(number), segment=segment)
    flow = flow_services.flow_create(organization=organization, name="Schema flow")
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    real_codes = {
        "/api/v1/chats/": str(chat.code),
        "/api/v1/contacts/": str(chat.contact.code),
        "/api/v1/numbers/": str(number.code),
        "/api/v1/webhooks/": str(subscription.code),
        "/api/v1/assistants/": str(assistant.code),
        "/api/v1/campaigns/": str(campaign.code),
        "/api/v1/segments/": str(segment.code),
        "/api/v1/flows/": str(flow.code),
    }
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        path_parameters = {}
        if "{code}" in operation.path:
            prefix = next(p for p in real_codes if operation.path.startswith(p))
            path_parameters = {"code": real_codes[prefix]}
        if operation.path.endswith(("/export/", "/erase/")):  # not the contact deleted above
            path_parameters["code"] = str(privacy_chat.contact.code)
        if "{source_code}" in operation.path:
            path_parameters["source_code"] = str(source.code)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(path_parameters=path_parameters))
        def run(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)

        run()
        tested += 1
    assert tested >= 45
