"""ASGI entry point: HTTP (Django) and websockets (Channels), for daphne or uvicorn."""

import asyncio
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

import django
from django.core import signals
from django.core.exceptions import MiddlewareNotUsed, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.middleware_ws import TenantWebsocketMiddleware  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from integrations import sandbox_links  # noqa: E402
from kernel import admission, health, realtime, startup, tasks  # noqa: E402


class AdmittingDjangoHandler(ASGIHandler):
    """Django's handler, running at most ``limit`` requests' middleware and views at once in
    this process (``kernel.admission``); the others wait their turn after their body has been
    read and before any work. Sending a streamed response happens outside the limit."""

    def __init__(self, turns: admission.Turns):
        super().__init__()
        self.turns = turns

    async def get_response_async(self, request):
        async with admission.admitted(self.turns.semaphore):
            return await super().get_response_async(request)


class ApiKeyDjangoHandler(ASGIHandler):
    """Django for integrator API calls made with an API key (``Authorization: Bearer …`` under
    ``/api/``), the API's hot path.

    Such a request carries no session, cookie or CSRF token and needs no tenant, user, message
    or htmx work: it runs only ``settings.API_KEY_MIDDLEWARE`` (request id and log line,
    security headers, language, common, audit context), all of it sync, with the view and
    Django's request signals in ONE hop to a thread of a small reused pool (the full stack took
    three hops and a new thread per request). It shares the process's turns
    (``HTTP_CONCURRENCY``) with the full stack. Measured with ``bench/api_profile.py`` (one
    request at a time, CPU per request): see the README's ``HTTP_CONCURRENCY`` row.

    The connection a request's thread used goes back to the pool in that thread (the
    ``request_finished`` signal fires there, before the answer is sent); a streamed answer is
    closed after sending, as Django does, and that thread's next request closes what is left.
    """

    def __init__(self, turns: admission.Turns):
        super().__init__()
        self.turns = turns
        # Threads are reused (a request holds one only while admitted, or while it waits on a
        # remote service with its turn given away); a thread never serves two at once.
        self.executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="api")

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(settings.API_KEY_MIDDLEWARE):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler

    async def __call__(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            semaphore = self.turns.semaphore
            if not await self._turn(semaphore, receive):
                return  # the client left while waiting: its request costs nothing
            loop = asyncio.get_running_loop()
            async with admission.admitted(semaphore, acquired=True):
                context = contextvars.copy_context()  # with this request's turn
                answered = loop.create_future()
                self.executor.submit(
                    context.run, self._respond_then_queue, scope, body_file, loop, answered
                )
                response = await answered
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    await loop.run_in_executor(self.executor, context.run, response.close)
        finally:
            body_file.close()

    async def _turn(self, semaphore: asyncio.Semaphore, receive) -> bool:
        """Wait for a turn; False (and no turn) if the client disconnects first, as Django's
        own handler drops a request whose client left (under overload, clients that gave up
        must not keep the queue long)."""
        if not semaphore.locked():
            await semaphore.acquire()
            return True
        turn = asyncio.ensure_future(semaphore.acquire())
        left = asyncio.ensure_future(self.listen_for_disconnect(receive))
        await asyncio.wait((turn, left), return_when=asyncio.FIRST_COMPLETED)
        if left.done():
            left.exception()  # RequestAborted: retrieved, not logged as lost
        else:
            left.cancel()
        if turn.done():
            return True
        turn.cancel()
        return False

    def _respond_then_queue(self, scope, body_file, loop, answered: asyncio.Future) -> None:
        """``_respond``, its answer handed to the event loop as soon as it is ready, then the
        live events its commits published and the tasks they queued sent on from this thread
        while the loop sends the answer (``kernel.realtime`` and ``kernel.tasks``'
        ``held_until_answered``)."""
        held: list = []
        events: list = []
        try:
            with tasks.held_until_answered() as held, realtime.held_until_answered() as events:
                response = self._respond(scope, body_file)
        except BaseException as error:  # handed to the request's coroutine, which raises it
            loop.call_soon_threadsafe(_settle, answered, None, error)
        else:
            loop.call_soon_threadsafe(_settle, answered, response, None)
        finally:
            # What was committed is published and queued, answer or not.
            realtime.publish_held(events)
            tasks.queue_held(held)

    def _respond(self, scope, body_file):
        """Everything Django does for the request, in this one thread."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            request.organization = request.membership = None  # as TenantMiddleware without user
            response = self.get_response(request)
            response._handler_class = self.__class__
        if not response.streaming:
            response.close()  # request_finished: this thread's connection goes back to the pool
        return response


def _settle(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.done():  # the waiting request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


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


def route_api_keys(api, app):
    """``/api/…`` requests with ``Authorization: Bearer …`` to ``api``: the API authenticates
    them by key alone (``ApiKeyAuthentication`` answers or refuses every Bearer header, so the
    session is never consulted), everything else to ``app``."""

    async def dispatch(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            for name, value in scope["headers"]:
                if name == b"authorization":
                    if value.startswith(b"Bearer "):
                        return await api(scope, receive, send)
                    break
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


turns = admission.Turns(settings.HTTP_CONCURRENCY)
django_http = route_api_keys(ApiKeyDjangoHandler(turns), AdmittingDjangoHandler(turns))
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
startup.freeze_startup_objects()  # the collector skips what lives as long as the process
