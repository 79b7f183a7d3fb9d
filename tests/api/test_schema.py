"""The OpenAPI schema describes the API and the API keeps its promises.

Schemathesis runs here as its command line does (``st run --checks all``): every phase
(schema examples, coverage of each parameter's edges, fuzzing, stateful sequences) with every
check (server errors, undocumented statuses, content types and headers, response bodies,
schema-valid requests refused, schema-invalid requests accepted, deleted resources still
answering, auth ignored, …) and the project's settings (``schemathesis.toml``), over HTTP to
our WSGI handler in this process, with a bounded number of examples so it stays around a
minute on a small machine. One violation fails the test and the report names each one.
"""

import threading
import tomllib
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import schemathesis
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django.test import override_settings
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from appointments import services as appointment_services
from assistants import services as assistant_services
from assistants.models import Assistant
from campaigns.models import Segment
from flows import services as flow_services
from integrations import services as channel
from integrations.models import WebhookSubscription
from integrations.whatsapp.sandbox import SandboxServer
from tests.api.helpers import key_for
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import make_chat, make_org
from tests.campaigns.helpers import make_campaign, make_template

EXAMPLES = 5
SAMPLE_CHARS = 400


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def api_url():
    """Our WSGI handler behind a local HTTP server in this process (so the test's settings
    apply); each request closes its thread's database connections."""
    django_app = get_wsgi_application()

    def app(environ, start_response):
        try:
            return django_app(environ, start_response)
        finally:
            connections.close_all()

    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sandbox():
    server = SandboxServer().start()
    channel._registered_with_sandbox.clear()
    with override_settings(SANDBOX_URL=server.url, SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9"):
        yield server
    server.stop()


def _world():
    """An organization with one of everything, and the path parameters that reach them (each
    operation that deletes gets an object of its own)."""
    organization, number = make_org("Clínica Schema", "clinica-schema", "444")
    chat = make_chat(organization, number, "5511900000044", "Schema Customer")
    doomed = make_chat(organization, number, "5511900000045", "Schema Deleted")
    erased = make_chat(organization, number, "5511900000046", "Schema Erased")
    subscription = WebhookSubscription.objects.create(
        organization=organization, url="https://hooks.example/porfin", events=["chat.created"]
    )
    doomed_subscription = WebhookSubscription.objects.create(
        organization=organization, url="https://hooks.example/old", events=["chat.created"]
    )
    assistant = Assistant(organization=organization, name="Schema Bot")
    assistant_services.assistant_save(assistant=assistant, numbers=[number])
    source = assistant_services.knowledge_add(
        assistant=assistant, kind="text", title="Hours", text="Open from 8 to 18."
    )
    doomed_source = assistant_services.knowledge_add(
        assistant=assistant, kind="text", title="Old", text="Closed on Sundays."
    )
    segment = Segment.objects.create(organization=organization, name="Nobody", kind="static")
    doomed_segment = Segment.objects.create(organization=organization, name="Old", kind="static")
    campaign = make_campaign(organization, number, make_template(number), segment=segment)
    agenda = make_agenda(organization)
    appointment = appointment_services.appointment_book(
        service=agenda["cleaning"],
        professional=agenda["ana"],
        starts_at=at(next_weekday(2), 9),
        channel="staff",
        customer_name="Schema Patient",
    )
    flow = flow_services.flow_create(organization=organization, name="Schema flow")
    codes = [
        ("/api/v1/chats/{code}/", chat.code),
        ("/api/v1/contacts/{code}/export/", erased.contact.code),
        ("/api/v1/contacts/{code}/erase/", erased.contact.code),
        ("/api/v1/contacts/{code}/", chat.contact.code),
        ("/api/v1/numbers/{code}/", number.code),
        ("/api/v1/webhooks/{code}/", subscription.code),
        ("/api/v1/assistants/{code}/", assistant.code),
        ("/api/v1/campaigns/{code}/", campaign.code),
        ("/api/v1/segments/{code}/", segment.code),
        ("/api/v1/appointments/{code}/", appointment.code),
        ("/api/v1/flows/{code}/", flow.code),
    ]
    operations = []
    for method, path, parameters in [
        ("DELETE", "/api/v1/contacts/{code}/", {"code": doomed.contact.code}),
        ("DELETE", "/api/v1/webhooks/{code}/", {"code": doomed_subscription.code}),
        ("DELETE", "/api/v1/segments/{code}/", {"code": doomed_segment.code}),
        (
            "DELETE",
            "/api/v1/assistants/{code}/sources/{source_code}/",
            {"code": assistant.code, "source_code": doomed_source.code},
        ),
    ]:
        operations.append(
            {
                "include-method": method,
                "include-path": path,
                "parameters": {f"path.{k}": str(v) for k, v in parameters.items()},
            }
        )
    operations.append(
        {
            "include-path-regex": r"^/api/v1/assistants/\{code\}/sources/\{source_code\}/$",
            "exclude-method": "DELETE",
            "parameters": {"path.code": str(assistant.code), "path.source_code": str(source.code)},
        }
    )
    for prefix, code in codes:
        operations.append(
            {
                "include-path-regex": "^" + prefix.replace("{", r"\{").replace("}", r"\}"),
                "parameters": {"path.code": str(code)},
            }
        )
    return organization, operations


def _violations(event) -> list[str]:
    """One line per failed check: phase, check, request, the answer and how to replay it."""
    found = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            case = event.recorder.cases[case_id].value
            interaction = event.recorder.interactions.get(case_id)
            response = interaction.response if interaction else None
            answer = (
                f"{response.status_code} {response.content[:SAMPLE_CHARS]!r}" if response else "-"
            )
            found.append(
                f"{event.phase.value} {check.name}: {case.method} {case.formatted_path}"
                f" → {check.failure_info.failure.title}: {answer}\n"
                f"    {check.failure_info.failure.message[:SAMPLE_CHARS]}\n"
                f"    {check.failure_info.code_sample[:SAMPLE_CHARS]}"
            )
    return found


@pytest.mark.django_db(transaction=True)
@override_settings(
    EGRESS_ALLOW_PRIVATE=False,
    API_THROTTLE_RATES=dict.fromkeys(
        ("read", "write", "send", "sync", "ask", "auth"), "100000/min"
    ),
)
def test_the_api_conforms_to_its_schema(sandbox, api_url):
    organization, operations = _world()
    project = tomllib.loads((settings.BASE_DIR / "schemathesis.toml").read_text())
    config = SchemathesisConfig.from_dict(
        {
            **project,
            "seed": 8,
            "headers": {"Authorization": f"Bearer {key_for(organization)}"},
            "workers": 1,
            "cache": {"enabled": False},
            "checks": {"enabled": True},
            "generation": {"max-examples": EXAMPLES, "database": "none", "no-shrink": True},
            "phases": {"stateful": {"max-steps": 6}},
            "operations": project.get("operations", []) + operations,
        }
    )
    schema = schemathesis.openapi.from_url(f"{api_url}/api/schema/", config=config)
    failures, tested = [], set()

    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status != Status.SKIP:
            tested.add(event.recorder.label)
            failures += _violations(event)
        elif isinstance(event, events.NonFatalError):
            failures.append(f"error: {event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    unique = sorted(set(failures))
    assert not unique, f"{len(unique)} violations:\n" + "\n".join(unique)
    assert len(tested) >= 45
