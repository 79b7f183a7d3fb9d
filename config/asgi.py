"""ASGI entry point: HTTP (Django) and websockets (Channels), for daphne or uvicorn."""

import asyncio
import os

import django
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.middleware_ws import TenantWebsocketMiddleware  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from integrations import sandbox_links  # noqa: E402
from kernel import admission, health, realtime, tasks  # noqa: E402


class AdmittingDjangoHandler(ASGIHandler):
    """Django's handler, running at most ``limit`` requests' middleware and views at once in
    this process (``kernel.admission``); the others wait their turn after their body has been
    read and before any work. Sending a streamed response happens outside the limit."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self._admission: asyncio.Semaphore | None = None

    async def get_response_async(self, request):
        if self._admission is None:  # created on the server's loop
            self._admission = asyncio.Semaphore(self.limit)
        async with admission.admitted(self._admission):
            return await super().get_response_async(request)


class BareDjangoHandler(ASGIHandler):
    """Django with no middleware, for machine-to-machine callbacks (Meta's webhook): no session,
    user, tenant or CSRF work, and no thread hop per sync middleware on the hottest path."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(handler)

    async def get_response_async(self, request):
        response = await super().get_response_async(request)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(
                len(response.content)
            )  # CommonMiddleware's job
        return response


def route_webhooks(webhooks, app):
    async def dispatch(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/webhooks/"):
            return await webhooks(scope, receive, send)
        return await app(scope, receive, send)

    return dispatch


def answer_liveness(app):
    """``GET /healthz/live`` answered here, before Django: a load balancer probing every
    process every second should cost nothing (no middleware, no thread, no database)."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(health.LIVE_BODY)).encode()),
        (b"cache-control", b"no-store"),
    ]

    async def application(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/healthz/live":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": health.LIVE_BODY})
            return None
        return await app(scope, receive, send)

    return application


def with_server_send(app):
    """Keep the server's own ``send`` in a websocket's scope as ``server_send``.

    Channels' session middleware wraps ``send`` to save the session on handshake messages and
    only inspects every other message on the way; the live inbox forwards thousands of frames a
    second per process, so ``LiveConsumer`` sends them on the server's callable directly."""

    async def application(scope, receive, send):
        return await app({**scope, "server_send": send}, receive, send)

    return application


class ServerLoopApplication:
    """Remembers the server's event loop so worker threads can publish live events on it."""

    def __init__(self, app):
        self.app = app
        self.loop = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            sandbox_links.note_server(scope)  # the sandbox calls this very server back
        loop = asyncio.get_running_loop()
        if loop is not self.loop:
            self.loop = loop
            realtime.register_server_loop(loop)
        return await self.app(scope, receive, send)


django_http = AdmittingDjangoHandler(settings.HTTP_CONCURRENCY)
webhooks = BareDjangoHandler()
if settings.IS_POSTGRES:
    from integrations.ingest import WebhookReceiver

    webhooks = WebhookReceiver(fallback=webhooks)  # signed POSTs with group commit
http_app = route_webhooks(webhooks, django_http)
if settings.SANDBOX_ENABLED:
    # The local Cloud API emulator, served by this same process at /sandbox/graph (embedded default).
    from integrations.whatsapp.sandbox import SandboxApp, mount

    http_app = mount(
        "/sandbox/graph",
        SandboxApp(
            api_version=settings.WHATSAPP_GRAPH_API_VERSION,
            control_token=sandbox_links.control_token(),
        ),
        http_app,
    )
    # And the Evolution API emulator (WhatsApp Web numbers) at /sandbox/evolution.
    from integrations import sandbox_web
    from integrations.whatsapp.evolution_sandbox import EvolutionSandboxApp

    http_app = mount(
        "/sandbox/evolution",
        EvolutionSandboxApp(
            api_key=settings.SANDBOX_EVOLUTION_KEY, restore=sandbox_web.emulated_sessions
        ),
        http_app,
    )

application = ServerLoopApplication(
    ProtocolTypeRouter(
        {
            "http": answer_liveness(http_app),
            "websocket": with_server_send(
                AllowedHostsOriginValidator(
                    AuthMiddlewareStack(TenantWebsocketMiddleware(URLRouter(websocket_urlpatterns)))
                )
            ),
        }
    )
)
tasks.start_embedded_worker()
