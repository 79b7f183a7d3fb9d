"""Meta's webhook deliveries: the checks every path shares, and on PostgreSQL a plain ASGI
receiver with group commit.

``delivery_check`` is the one place that decides whether a POST to ``/webhooks/whatsapp/<key>/``
is accepted (number lookup, size limits, signature, a re-read after a secret rotation) and what
a refusal answers. Two paths call it and differ only in how they read the body and write the row:
``integrations.views.whatsapp_webhook`` (GET verification, SQLite, anything else) and, on
PostgreSQL, ``WebhookReceiver`` below.

The receiver exists because a number at 80 msg/s brings about 320 webhooks/s (three statuses per
message, plus inbound), and Meta wants each one acknowledged fast. Django's request cycle costs
more than the work here (request signals hop to threads; one INSERT and one durable COMMIT per
delivery makes the disk flush the ceiling). Deliveries arriving together are written by one
multi-row INSERT whose durable commit comes before any of their 200s ("store first"); then the
drain is signalled (``services.webhook_drain_signal``), which claims stored deliveries itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from psycopg.types.json import Jsonb

from integrations import services
from integrations.errors import IntegrationError
from integrations.models import WebhookEvent, WhatsAppNumber
from integrations.providers import WebhookVerdict, provider_for

logger = logging.getLogger(__name__)

PATH = re.compile(
    r"^/webhooks/(?:whatsapp/([A-Za-z0-9_-]{1,64})/"
    r"|evolution/([A-Za-z0-9_-]{1,64})/(?:([A-Za-z0-9_-]{1,64})/)?)$"
)  # Evolution (WhatsApp Web) deliveries may carry the number's secret in the path
MAX_BATCH = 500
FIELDS = ("number_id", "organization_id", "body", "headers", "processed_at", "error")
HEADERS = FIELDS.index("headers")  # the column sent as jsonb
# One statement text whatever the batch's size (a column per array), prepared once per
# connection: a multi-row VALUES list was a new text for every size, which psycopg converted
# afresh (too long for its cache) and PostgreSQL parsed and planned afresh, at every batch.
INSERT_SQL = (
    f"INSERT INTO {WebhookEvent._meta.db_table} ({', '.join(FIELDS)}, received_at, attempts) "  # noqa: S608
    "SELECT *, %s, 0 FROM unnest(%b::bigint[], %b::bigint[], %b::bytea[], %b::jsonb[], "
    "%b::timestamptz[], %b::text[]) RETURNING id"
)  # arrays sent in binary: dumping them as text, escaped element by element, cost twice the CPU
SIGNAL_INTERVAL = 0.01  # seconds between two drain signals from one event loop, at most


# --- The checks both paths share ----------------------------------------------------------------


class Refusal(NamedTuple):
    """A webhook request turned away: the status and the plain-text reason to answer with."""

    status: int
    reason: str


class Delivery(NamedTuple):
    """A POST that passed every check: the body as received, signed with ``number``'s secret."""

    number: WhatsAppNumber
    body: bytes


UNAVAILABLE = Refusal(503, "Try again later")  # Meta keeps the delivery and retries it
UNKNOWN = Refusal(404, "Unknown webhook")
BAD_LENGTH = Refusal(400, "Bad Content-Length")
TOO_LARGE = Refusal(413, "Payload too large")
UNSIGNED = Refusal(401, "Missing X-Hub-Signature-256")
FORGED = Refusal(403, "Invalid signature")


async def webhook_number(key: str) -> WhatsAppNumber | Refusal:
    """The number ``key`` belongs to, from this process's cache when it can (no thread hop)."""
    try:
        number = services.webhook_number_cached(key) or await database(services.webhook_number, key)
    except DatabaseError:
        logger.exception("Webhook %s: the database is unavailable", key[:6])
        return UNAVAILABLE
    return UNKNOWN if number is None else number


async def delivery_check(
    key: str, headers: Mapping[str, str], read_body: Callable[[int], Awaitable[bytes | None]]
) -> Delivery | Refusal:
    """Whether a POST for ``key`` may be stored, and if not, what to answer.

    ``headers`` has lowercase names. ``read_body(limit)`` returns the body, or None as soon as
    it is over ``limit`` bytes; it is only called once the declared length fits (413 otherwise,
    before reading anything). The number's provider checks the signature (Cloud API:
    ``X-Hub-Signature-256`` over the exact bytes with the app secret; missing 401, wrong 403);
    on a mismatch the number is read again, bypassing the cache, in case its secret was just
    rotated.
    """
    number = await webhook_number(key)
    if isinstance(number, Refusal):
        return number
    try:
        declared = int(headers.get("content-length") or 0)
    except ValueError:
        return BAD_LENGTH
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    if declared > limit:
        return TOO_LARGE
    body = await read_body(limit)
    if body is None or len(body) > limit:
        return TOO_LARGE
    verdict = _verdict(number, headers, body)
    if verdict is WebhookVerdict.UNSIGNED:
        return UNSIGNED
    if verdict is WebhookVerdict.AUTHENTIC:
        return Delivery(number, body)
    try:
        number = await database(services.webhook_number, key, fresh=True)
    except DatabaseError:
        return UNAVAILABLE
    if number is None or _verdict(number, headers, body) is not WebhookVerdict.AUTHENTIC:
        logger.warning("Webhook for number %s: bad signature", number and number.pk)
        return FORGED
    return Delivery(number, body)


PATH_SECRET = "x-porfin-path-secret"


def with_path_secret(headers: dict[str, str], secret: str | None) -> None:
    """A secret from the URL's path (Evolution webhooks) is checked like a header; a client
    cannot send it as a real header to skip the path."""
    headers.pop(PATH_SECRET, None)
    if secret:
        headers[PATH_SECRET] = secret


def _verdict(number: WhatsAppNumber, headers: Mapping[str, str], body: bytes) -> WebhookVerdict:
    try:
        return provider_for(number).verify_webhook(headers=headers, body=body)
    except IntegrationError as error:  # the number's provider is not available here
        logger.warning("Webhook for number %s cannot be verified: %s", number.pk, error)
        return WebhookVerdict.FORGED


def database(func, *args, **kwargs):
    """Run ORM work (the number lookup, rare thanks to its cache; the view's INSERT) from async
    webhook code, on the event loop's executor threads rather than a thread per request.

    No request signals run here, so the connection is given back (to the pool on PostgreSQL)
    right after. Under the inline task runner (tests, inside the test case's transaction) it
    stays on the caller's connection instead.
    """
    if settings.TASK_RUNNER == "inline":
        return sync_to_async(func, thread_sensitive=True)(*args, **kwargs)

    def call():
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)()


# --- PostgreSQL: the group-commit receiver ------------------------------------------------------


class WebhookReceiver:
    """ASGI app: takes webhook POSTs, hands every other request to ``fallback``."""

    def __init__(self, fallback):
        self.fallback = fallback
        self.writers: dict[asyncio.AbstractEventLoop, BatchWriter] = {}

    async def __call__(self, scope, receive, send):
        match = PATH.match(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            return await self.fallback(scope, receive, send)
        status, body = await self.receive_delivery(match[1] or match[2], scope, receive, match[3])
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json" if status == 200 else b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def receive_delivery(
        self, key: str, scope, receive, path_secret: str | None = None
    ) -> tuple[int, bytes]:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        with_path_secret(headers, path_secret)
        checked = await delivery_check(key, headers, functools.partial(_read_body, receive))
        if isinstance(checked, Refusal):
            return checked.status, checked.reason.encode()
        number = checked.number
        fields = services.webhook_event_fields(number=number, body=checked.body, headers=headers)
        try:
            event_id = await self.writer().write(fields)
        except (psycopg.Error, OSError):
            logger.exception("Webhook for number %s could not be stored", number.pk)
            return UNAVAILABLE.status, UNAVAILABLE.reason.encode()
        return 200, json.dumps({"received": event_id}).encode()

    def writer(self) -> BatchWriter:
        loop = asyncio.get_running_loop()
        if loop not in self.writers:
            self.writers[loop] = BatchWriter()
        return self.writers[loop]


async def _read_body(receive, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past ``limit`` bytes."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise OSError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


class BatchWriter:
    """Writes the deliveries of one event loop: whatever queued up while the previous INSERT was
    committing goes in the next one (group commit), on a connection of its own."""

    def __init__(self):
        self.queue: asyncio.Queue[tuple[dict, asyncio.Future]] = asyncio.Queue()
        self.connection: psycopg.AsyncConnection | None = None
        self.runner = asyncio.get_running_loop().create_task(self.run())
        self.stored = False  # deliveries stored since the drain was last signalled
        self.dispatcher: asyncio.Task | None = None

    async def write(self, fields: dict) -> int:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((fields, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                ids = await self.insert([fields for fields, _future in batch])
            except Exception as error:  # noqa: BLE001 (handed to every waiting request)
                await self.reset()
                for _fields, future in batch:
                    if not future.done():
                        future.set_exception(
                            error if isinstance(error, psycopg.Error) else OSError(str(error))
                        )
                continue
            for (_fields, future), event_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(event_id)
            if any(not fields["error"] for fields, _f in batch):
                self.stored = True
                if self.dispatcher is None or self.dispatcher.done():
                    self.dispatcher = asyncio.get_running_loop().create_task(self.dispatch())

    async def dispatch(self) -> None:
        """Tell the drain that deliveries are waiting (``services.webhook_drain_signal``: one
        cache round trip while a drain runs). Batches stored while a signal is on its way share
        the next one; no answer waits for it (their 200s have gone already)."""
        while self.stored:
            self.stored = False
            await sync_to_async(services.webhook_drain_signal, thread_sensitive=False)()
            # What is stored meanwhile shares the next signal: at most one per interval, not
            # one per batch (each is a thread hop and a cache round trip on this loop's core).
            await asyncio.sleep(SIGNAL_INTERVAL)

    async def insert(self, rows: list[dict]) -> list[int]:
        if self.connection is None or self.connection.closed:
            self.connection = await psycopg.AsyncConnection.connect(
                **_connection_params(), autocommit=True
            )
        columns = [[row[name] for row in rows] for name in FIELDS]
        columns[HEADERS] = [Jsonb(value) for value in columns[HEADERS]]
        cursor = await self.connection.execute(INSERT_SQL, [timezone.now(), *columns], prepare=True)
        return [row[0] for row in await cursor.fetchall()]

    async def reset(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(psycopg.Error):
                await self.connection.close()
        self.connection = None


def _connection_params() -> dict:
    database = settings.DATABASES["default"]
    options = {k: v for k, v in database.get("OPTIONS", {}).items() if k in ("sslmode",)}
    params = {
        "dbname": database["NAME"],
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "application_name": "porfin-webhook-ingest",
        **options,
    }
    return {k: v for k, v in params.items() if v is not None}
