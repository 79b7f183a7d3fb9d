"""Shared fixtures: a real sandbox server on a free port, and a local webhook receiver.

No database and no Django settings: these tests run with or without pytest-django.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.whatsapp.client import CloudAPIClient
from integrations.whatsapp.sandbox import SandboxApp, SandboxServer

API_VERSION = "v25.0"
PNID = "106540352242922"
WABA_ID = "102290129340398"
DISPLAY_NUMBER = "551140000000"
ACCESS_TOKEN = "EAAGsandboxTOKEN-do-not-log-7f3a9c"
APP_SECRET = "sandbox-app-secret-1234"
VERIFY_TOKEN = "verify-me-please"
CUSTOMER = "5511988887777"
FAST_DELAYS = {"sent": 0.01, "delivered": 0.03, "read": 0.05}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A tiny threaded HTTP server that records POSTs and answers Meta's GET challenge.

    ``status_codes`` holds the answers to give to the next POSTs (then 200); ``delay`` makes
    every POST slow.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status_codes: list[int] = []
        self.delay = 0.0
        self.verify_token = VERIFY_TOKEN
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._condition:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.status_codes.pop(0) if receiver.status_codes else 200
                    receiver._condition.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                token = query.get("hub.verify_token", [""])[0]
                if query.get("hub.mode") == ["subscribe"] and token == receiver.verify_token:
                    status, body = 200, query.get("hub.challenge", [""])[0].encode()
                else:
                    status, body = 403, b"Forbidden"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhook"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate(self.requests):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; received {len(self.requests)} webhooks")
                self._condition.wait(remaining)
            return list(self.requests)

    def wait_count(self, count: int, timeout: float = 5.0) -> list[Received]:
        return self.wait_for(lambda items: len(items) >= count, timeout)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


class AppSwitch:
    """An ASGI app forwarding to ``app``, so one uvicorn server serves a fresh sandbox per test."""

    def __init__(self) -> None:
        self.app: SandboxApp | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.app is not None, "no sandbox installed"
        await self.app(scope, receive, send)


@dataclass
class RunningSandbox:
    url: str
    app: SandboxApp


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(AppSwitch()) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[RunningSandbox]:
    """A fresh ``SandboxApp`` served over real HTTP on a free port."""
    app = SandboxApp(
        api_version=API_VERSION,
        webhook_timeout=2.0,
        webhook_retry_delays=(0.05, 0.1),
        delivery_workers=8,
    )
    sandbox_server.app.app = app
    yield RunningSandbox(url=sandbox_server.url, app=app)
    app.close()


@pytest.fixture
def register(sandbox: RunningSandbox, receiver: WebhookReceiver) -> Callable[..., dict]:
    """Register a number on the sandbox (test defaults: fast statuses, no 24 h window)."""

    def register_number(**overrides: Any) -> dict:
        config = {
            "phone_number_id": PNID,
            "display_phone_number": DISPLAY_NUMBER,
            "waba_id": WABA_ID,
            "access_token": ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "webhook_url": receiver.url,
            "delays": dict(FAST_DELAYS),
            "enforce_window": False,
            **overrides,
        }
        return sandbox.app.register_number(config)

    return register_number


@pytest.fixture
def number(register: Callable[..., dict]) -> dict:
    return register()


def make_client(sandbox: RunningSandbox, **overrides: Any) -> CloudAPIClient:
    options: dict[str, Any] = {
        "base_url": sandbox.url,
        "api_version": API_VERSION,
        "phone_number_id": PNID,
        "access_token": ACCESS_TOKEN,
        "waba_id": WABA_ID,
        "backoff_base": 0.02,
        "backoff_max": 0.1,
        "max_retry_delay": 1.0,
        **overrides,
    }
    return CloudAPIClient(**options)


@pytest.fixture
def client(sandbox: RunningSandbox, number: dict) -> CloudAPIClient:
    return make_client(sandbox)


def graph(sandbox: RunningSandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A raw Graph call to the sandbox with the number's token (to see Meta's answers)."""
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}", **kwargs.pop("headers", {})}
    return requests.request(
        method, f"{sandbox.url}/{API_VERSION}/{path}", headers=headers, timeout=5, **kwargs
    )


def control(sandbox: RunningSandbox, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=5, **kwargs)


# --- Django-side helpers for the channel tests (test_webhook_*.py, test_channel_*.py) ---------

CUSTOMER_WA_ID = "5511977776666"


def webhook_path(number) -> str:
    return f"/webhooks/whatsapp/{number.webhook_key}/"


def post_signed(client, number, body: bytes, *, secret: str | None = None, signature=None):
    """POST ``body`` to ``number``'s webhook, signed with ``secret`` (default: its own)."""
    from integrations.whatsapp.signature import sign

    headers = {}
    if signature is None:
        signature = sign(body, number.app_secret if secret is None else secret)
    if signature:
        headers["X-Hub-Signature-256"] = signature
    return client.post(
        webhook_path(number), data=body, content_type="application/json", headers=headers
    )


def inbound_body(
    number,
    *,
    wamid: str,
    message_type: str = "text",
    content=None,
    wa_id: str = CUSTOMER_WA_ID,
    name: str = "Carla Cliente",
    timestamp: int | None = None,
    phone_number_id: str | None = None,
    context: dict | None = None,
) -> bytes:
    from integrations.whatsapp import payloads as wa

    message = wa.build_inbound_message(
        wamid=wamid,
        from_wa_id=wa_id,
        message_type=message_type,
        content=content if content is not None else wa.build_text("Olá, tudo bem?"),
        timestamp=str(timestamp or int(time.time())),
        context=context,
    )
    change = wa.build_messages_change(
        phone_number_id=phone_number_id or number.phone_number_id,
        display_phone_number="551140000000",
        contacts=[wa.build_contact(wa_id=wa_id, profile_name=name)],
        messages=[message],
    )
    return wa.encode_webhook(wa.build_webhook(number.waba_id or "1000", [change]))


def status_body(number, *statuses, phone_number_id: str | None = None) -> bytes:
    """``statuses``: (wamid, status, unix timestamp[, errors]) tuples, batched in one body."""
    from integrations.whatsapp import payloads as wa

    items = [
        wa.build_status(
            wamid=item[0],
            status=item[1],
            recipient_id=CUSTOMER_WA_ID,
            timestamp=str(item[2]),
            errors=item[3] if len(item) > 3 else None,
        )
        for item in statuses
    ]
    change = wa.build_messages_change(
        phone_number_id=phone_number_id or number.phone_number_id,
        display_phone_number="551140000000",
        statuses=items,
    )
    return wa.encode_webhook(wa.build_webhook(number.waba_id or "1000", [change]))
