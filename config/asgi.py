"""ASGI entry point: HTTP (Django) and websockets (Channels), for daphne or uvicorn."""

import asyncio
import os

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.middleware_ws import TenantWebsocketMiddleware  # noqa: E402
from config import realtime, tasks  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402


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


class ServerLoopApplication:
    """Remembers the server's event loop so worker threads can publish live events on it."""

    def __init__(self, app):
        self.app = app
        self.loop = None

    async def __call__(self, scope, receive, send):
        loop = asyncio.get_running_loop()
        if loop is not self.loop:
            self.loop = loop
            realtime.register_server_loop(loop)
        return await self.app(scope, receive, send)


webhooks = BareDjangoHandler()
if settings.IS_POSTGRES:
    from integrations.ingest import WebhookReceiver

    webhooks = WebhookReceiver(fallback=webhooks)  # signed POSTs with group commit
http_app = route_webhooks(webhooks, django_http)
if settings.SANDBOX_ENABLED:
    # The local Cloud API emulator, served by this same process at /sandbox/graph (embedded default).
    from integrations.whatsapp.sandbox import SandboxApp, mount

    http_app = mount(
        "/sandbox/graph", SandboxApp(api_version=settings.WHATSAPP_GRAPH_API_VERSION), http_app
    )

application = ServerLoopApplication(
    ProtocolTypeRouter(
        {
            "http": http_app,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(TenantWebsocketMiddleware(URLRouter(websocket_urlpatterns)))
            ),
        }
    )
)
tasks.start_embedded_worker()
