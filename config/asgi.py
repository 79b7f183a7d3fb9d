"""ASGI entry point: HTTP (Django) and websockets (Channels), for daphne or uvicorn."""

import asyncio
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.middleware_ws import TenantWebsocketMiddleware  # noqa: E402
from config import realtime, tasks  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402


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


http_app = django_http
if settings.SANDBOX_ENABLED:
    # The local Cloud API emulator, served by this same process at /sandbox/graph (embedded default).
    from integrations.whatsapp.sandbox import SandboxApp, mount

    http_app = mount(
        "/sandbox/graph", SandboxApp(api_version=settings.WHATSAPP_GRAPH_API_VERSION), django_http
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
