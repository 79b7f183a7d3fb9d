"""The WhatsApp channel: durable webhook ingest, processing and templates, through each number's
provider (``integrations.providers``); the sandbox's number registration."""

import hashlib
import json
import logging
import re
import threading
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import DataError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations import events as channel_events
from integrations import sandbox_links, signals
from integrations.errors import IntegrationError
from integrations.models import MessageTemplate, WebhookEvent, WhatsAppNumber
from integrations.providers import provider_for
from integrations.whatsapp.payloads import TEMPLATE_STATUS_MAX
from kernel import cache as kernel_cache
from kernel import tasks

logger = logging.getLogger(__name__)

AUDIT_HEADERS = (
    "user-agent",
    "x-hub-signature-256",
    "content-type",
    "content-length",
    "x-forwarded-for",
)
MAX_PROCESSING_ATTEMPTS = 8
SWEEP_BATCH = 50
PROCESS_BATCH = 50


# --- Sandbox --------------------------------------------------------------------------------------

_registered_with_sandbox: set[tuple[str, ...]] = set()
_registration_lock = threading.Lock()


def webhook_path(number: WhatsAppNumber) -> str:
    return f"/webhooks/whatsapp/{number.webhook_key}/"


def sandbox_register(number: WhatsAppNumber, *, force: bool = False) -> None:
    """Tell the sandbox about a sandbox number (token, secret, where to send its webhooks).

    Done once per process for the same sandbox, webhook target and credentials; the sandbox keeps
    numbers in memory.
    """
    webhook_url = sandbox_links.webhook_base_url() + webhook_path(number)
    sandbox_url = sandbox_links.sandbox_url()
    fingerprint = hashlib.sha256(
        f"{number.access_token}\0{number.app_secret}\0{number.waba_id}".encode()
    ).hexdigest()
    key = (number.phone_number_id, sandbox_url, webhook_url, fingerprint)
    with _registration_lock:
        if key in _registered_with_sandbox and not force:
            return
        response = requests.post(
            sandbox_url + "/_sandbox/numbers",
            headers=sandbox_links.control_headers(),
            json={
                "phone_number_id": number.phone_number_id,
                "display_phone_number": re.sub(r"\D", "", number.display_phone_number),
                "waba_id": number.waba_id,
                "access_token": number.access_token,
                "app_secret": number.app_secret,
                "webhook_url": webhook_url,
                "verify_token": number.verify_token,
                # Porfin checks the 24-hour window itself before any call; the sandbox's own
                # check knows only the traffic it saw, so it would refuse seeded demo chats.
                "enforce_window": False,
            },
            timeout=5,
        )
        response.raise_for_status()
        _registered_with_sandbox.add(key)


def sandbox_customer_send(*, number: WhatsAppNumber, spec: dict) -> dict:
    """Make the sandbox send ``spec`` as a customer message to ``number``'s webhook."""
    sandbox_register(number)
    response = requests.post(
        f"{sandbox_links.sandbox_url()}/_sandbox/numbers/{number.phone_number_id}/inbound",
        json=spec,
        headers=sandbox_links.control_headers(),
        timeout=15,
    )
    if response.status_code >= 400:
        raise requests.HTTPError(response.json().get("error", response.text), response=response)
    return response.json()


# --- Inbound: store first, process after ---------------------------------------------------------


_webhook_numbers: dict[str, tuple[float, WhatsAppNumber]] = {}
WEBHOOK_NUMBER_TTL = 10.0  # seconds a number's webhook credentials are reused without a query
# Every process's copies go when any number changes (deactivated, secret rotated): a version in
# the shared cache (Redis), bumped after the change commits and read by each process at most
# every VERSION_CHECK_SECONDS, so the webhook pays one GET per process per half second, not a
# round trip per delivery (``bench/webhook_number_version.py``). The TTL remains as the
# fallback should the shared cache be unreachable.
WEBHOOK_NUMBERS_VERSION = "integrations:webhook-numbers:version"
VERSION_CHECK_SECONDS = 0.5


class _VersionState:
    checked = -VERSION_CHECK_SECONDS  # monotonic time of the last check
    seen: str | None = None  # the shared version this process's copies belong to
    generation = 0  # bumped at each local clear: a load that started before it is not kept


_version = _VersionState()


def _webhook_numbers_clear() -> None:
    _version.generation += 1
    _webhook_numbers.clear()


def _webhook_numbers_check(now: float) -> None:
    """Drop every cached number when the shared version moved (at most one GET per interval)."""
    if now - _version.checked < VERSION_CHECK_SECONDS:
        return
    _version.checked = now
    try:
        version = kernel_cache.version_get(WEBHOOK_NUMBERS_VERSION)
    except Exception:  # the shared cache is down: the TTL still bounds staleness
        logger.warning("Webhook number version unreadable; cached numbers kept up to their TTL")
        return
    if version != _version.seen:
        _webhook_numbers_clear()
        _version.seen = version


def webhook_number_cached(key: str) -> WhatsAppNumber | None:
    """``webhook_number`` from this process's memory only (None when not cached or stale)."""
    now = time.monotonic()
    _webhook_numbers_check(now)
    cached = _webhook_numbers.get(key)
    if cached and now - cached[0] < WEBHOOK_NUMBER_TTL:
        return cached[1]
    return None


def webhook_number(key: str, *, fresh: bool = False) -> WhatsAppNumber | None:
    """The active number a webhook key belongs to, with what the webhook needs (secret, verify
    token), kept a few seconds per process so that a delivery costs one INSERT. ``fresh``
    reads it again (e.g. after a signature mismatch, in case the secret was just rotated)."""
    now = time.monotonic()
    _webhook_numbers_check(now)
    cached = _webhook_numbers.get(key)
    if cached and not fresh and now - cached[0] < WEBHOOK_NUMBER_TTL:
        return cached[1]
    generation = _version.generation
    number = (
        WhatsAppNumber.objects.filter(webhook_key=key, is_active=True)
        .only("pk", "organization_id", "provider", "app_secret", "verify_token", "webhook_secret")
        .first()
    )
    if number is None:
        _webhook_numbers.pop(key, None)
    elif generation == _version.generation:  # not read across a change another process made
        if len(_webhook_numbers) > 10_000:
            _webhook_numbers.clear()
        _webhook_numbers[key] = (now, number)
    return number


def forget_webhook_number(number: WhatsAppNumber | None = None) -> None:
    """A number changed: drop this process's copy now, and every process's after the commit
    (the shared version moves; each process sees it within ``VERSION_CHECK_SECONDS``). Called
    by the number services and on every save or delete of a number (``receivers``)."""
    if number is not None:
        _webhook_numbers.pop(number.webhook_key, None)

    def bump():
        _webhook_numbers_clear()
        try:
            _version.seen = kernel_cache.version_bump(WEBHOOK_NUMBERS_VERSION)
        except Exception:
            logger.exception("Webhook number version not bumped; other processes wait the TTL")

    transaction.on_commit(bump)


def webhook_event_fields(*, number: WhatsAppNumber, body: bytes, headers: dict) -> dict:
    """The ``WebhookEvent`` row for one signed delivery: the body as received, the headers kept
    for audit, and, for a body that is not JSON, already marked processed with the reason (the
    signature proves Meta sent these bytes, so there is nothing to retry).

    Only "is it JSON at all" is asked here, with the plain decoder (this runs for every delivery
    on the receiver's hot path); the finer refusals (NaN, nesting deeper than
    ``payloads.MAX_DEPTH``) are the processing's, which records them the same way. A body nested
    too deeply for the decoder (``RecursionError``) is malformed here too, never a 500.
    """
    fields = {
        "number_id": number.pk,
        "organization_id": number.organization_id,
        "body": body,
        "headers": {name: headers[name] for name in AUDIT_HEADERS if name in headers},
        "processed_at": None,
        "error": "",
    }
    try:
        json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError too
        if isinstance(error, RecursionError):
            error = "nested too deeply"
        logger.warning("Webhook for number %s is not JSON: %s", number.pk, error)
        fields["processed_at"] = timezone.now()
        fields["error"] = f"Malformed JSON: {error}"[:2000]
    return fields


def webhook_event_store(*, number: WhatsAppNumber, body: bytes, headers: dict) -> WebhookEvent:
    """Write one signed delivery to the durable log and queue its processing.

    One INSERT (autocommit) and one enqueue. Once the row exists the delivery is safe: if the
    queue loses the task (or is down), the sweep finds the row later. On PostgreSQL the web
    tier's POSTs take the faster path in ``integrations.ingest`` (same row, same answers).
    """
    event = WebhookEvent.objects.create(
        **webhook_event_fields(number=number, body=body, headers=headers)
    )
    if event.processed_at is None:
        webhook_events_queue([event.pk])
    return event


def webhook_events_queue(event_ids: list[int]) -> None:
    """Hand stored deliveries to the inbound queue, one task per batch."""
    try:
        tasks.dispatch("integrations.tasks.process_webhook_events", event_ids, queue="inbound")
    except Exception:  # the broker is down: the rows are stored, the sweep will queue them
        logger.exception(
            "Webhook events %s stored but not queued; the sweep will pick them up", event_ids
        )


def webhook_event_process(event_id: int) -> None:
    webhook_events_process([event_id])


def webhook_events_process(event_ids: list[int]) -> None:
    """Process stored deliveries in transactions of at most ``PROCESS_BATCH`` events: large
    enough to share commits and lookups (a batch's messages are stored in a few statements),
    small enough that a batch holds its chats' locks only briefly (another worker may be
    waiting for them)."""
    for start in range(0, len(event_ids), PROCESS_BATCH):
        _events_process(event_ids[start : start + PROCESS_BATCH])


# --- The drain: many deliveries per task (issue 21) ------------------------------------------
#
# On PostgreSQL the receiver does not queue the ids it stored: it signals that deliveries are
# waiting (``webhook_drain_signal``: one SET NX in the cache; tasks only when no drain is on its
# way) and a drain task claims the oldest unprocessed deliveries itself, ``DRAIN_BATCH`` at a
# time, until none are left or ``DRAIN_SECONDS`` pass (then it queues itself again). A task
# thus carries thousands of deliveries during a backlog instead of a few dozen, and django-q2's
# own cost per task, the queueing round trips and the per-task transactions all but vanish.

DRAIN_BATCH = 200  # deliveries claimed and processed per transaction
DRAIN_SECONDS = 2.0  # a drain task's time budget before it queues itself again
DRAIN_FLAG_SECONDS = 30  # a drain lost with its worker is restarted by the next delivery after this
DRAIN_FLAG = "porfin:inbound-drain"
DRAIN_RUNS = "porfin:inbound-drain:runs"  # drain tasks run (the bench's events per task)
DRAIN_LOCK = 0x706F7266  # advisory lock: one claim at a time, so claims lock chats in order


def webhook_drain_enabled() -> bool:
    return connection.vendor == "postgresql"


def webhook_drain_signal(*, force: bool = False) -> None:
    """Deliveries were stored (committed): make sure a drain is on its way. Costs one SET NX
    while a drain runs; queues one task per inbound worker when none does (or when ``force``).

    No delivery is left behind: a drain that finds nothing clears the flag and then looks once
    more, so a delivery committed before the clear is seen by that last look, and one committed
    after it sets the flag again and queues a new drain."""
    from django.core.cache import cache

    if settings.TASK_RUNNER != "django_q":  # one process: run (inline) or submit one drain
        tasks.dispatch("integrations.tasks.drain_webhook_events", queue="inbound")
        return
    try:
        if not cache.add(DRAIN_FLAG, 1, DRAIN_FLAG_SECONDS) and not force:
            return
    except Exception:  # the cache is down: queue anyway (a drain that finds nothing is cheap)
        logger.exception("The drain flag could not be set; queueing a drain")
    for _ in range(_drain_tasks()):
        try:
            tasks.dispatch("integrations.tasks.drain_webhook_events", queue="inbound")
        except Exception:  # the broker is down: the rows are stored, the sweep signals again
            logger.exception("Drain not queued; the sweep will signal again")
            with _quietly():
                cache.delete(DRAIN_FLAG)
            return


def _drain_tasks() -> int:
    """Tasks started when the drain is idle: one per inbound worker."""
    cluster = settings.Q_CLUSTER.get("ALT_CLUSTERS", {}).get(tasks.cluster_name("inbound"), {})
    return max(1, int(cluster.get("workers", settings.Q_CLUSTER.get("workers", 2))))


def webhook_events_drain(*, seconds: float = DRAIN_SECONDS) -> int:
    """Process stored deliveries, oldest first, ``DRAIN_BATCH`` per transaction, until none is
    left (returns) or ``seconds`` have passed (queues itself again). Returns how many it took.

    A claim marks its deliveries attempted in one UPDATE (committed first, as in
    ``_events_process``, so a delivery that kills its worker is counted and later retried
    alone by the sweep); only deliveries never attempted are claimed, with ``SKIP LOCKED``, so
    two workers never claim the same one. Claims take turns (an advisory lock, held until the
    batch has locked its chats): a batch claimed later locks a shared chat after the earlier
    one and waits for its commit, so each chat's messages are stored in delivery order across
    workers."""
    from django.core.cache import cache

    deadline = time.monotonic() + seconds
    taken = 0
    with _quietly():
        if not cache.add(DRAIN_RUNS, 1, None):
            cache.incr(DRAIN_RUNS)
    while True:
        claimed = _drain_batch()
        taken += claimed
        if not claimed:
            with _quietly():
                cache.delete(DRAIN_FLAG)
            claimed = _drain_batch()  # one more look: see webhook_drain_signal
            taken += claimed
            if not claimed:
                return taken
        if time.monotonic() > deadline:
            if settings.TASK_RUNNER != "django_q":
                continue  # inline or threads: no queue to go back to; finish the backlog
            with _quietly():
                cache.set(DRAIN_FLAG, 1, DRAIN_FLAG_SECONDS)
            tasks.dispatch("integrations.tasks.drain_webhook_events", queue="inbound")
            return taken


class _quietly:
    """The drain's cache bookkeeping never stops it (the flag only saves tasks)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if error is not None and isinstance(error, Exception):
            logger.warning("Drain bookkeeping failed: %s", error)
            return True
        return False


def claim_sql(locking: bool) -> str:
    """The drain's claim: the oldest deliveries never attempted, marked attempted (``%s``: how
    many). ``locking``: PostgreSQL, where two workers skip each other's rows."""
    table = WebhookEvent._meta.db_table
    skip = " FOR UPDATE SKIP LOCKED" if locking else ""
    return (
        f"UPDATE {table} SET attempts = attempts + 1 WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {table} WHERE processed_at IS NULL AND attempts = 0"
        f" ORDER BY id LIMIT %s{skip}) RETURNING id"
    )


def claim_plan_pin(cursor) -> None:
    """For the rest of this transaction, plan the claim as a walk of ``webhookevent_unclaimed``
    in id order that stops at the batch size. With stale statistics (a burst, autovacuum
    behind or switched off) PostgreSQL otherwise fetched every unclaimed row and sorted them:
    100-290 ms a claim during a 60 s burst, against about 1."""
    cursor.execute(
        "SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)"
    )


def _drain_batch() -> int:
    locking = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if locking:
            cursor.execute("SELECT pg_advisory_lock(%s)", [DRAIN_LOCK])
        released = not locking

        def release():
            nonlocal released
            if not released:
                released = True
                with connection.cursor() as unlock:
                    unlock.execute("SELECT pg_advisory_unlock(%s)", [DRAIN_LOCK])

        try:
            with transaction.atomic():
                _relaxed_commit()
                if locking:
                    claim_plan_pin(cursor)
                cursor.execute(claim_sql(locking), [DRAIN_BATCH])
                ids = sorted(row[0] for row in cursor.fetchall())
            if ids:
                _events_process(ids, counted=True, announced=release)
        finally:
            release()
    return len(ids)


def _events_process(event_ids: list[int], *, counted: bool = False, announced=None) -> None:
    """Parse stored deliveries and publish their domain events, exactly once in effect.

    Correctness comes from the database, not from the queue (django-q2 may run a task twice, or
    lose it when a worker dies): the work happens in one transaction that locks the event rows
    and marks them processed, so a second worker given the same events skips them, and a worker
    killed midway leaves nothing behind but unprocessed rows, which the sweep queues again. On
    top of that, receivers dedupe by wamid and move statuses only forward, so a duplicate
    delivery from Meta (a different row with the same content) has no second effect either.

    A batch shares one transaction (one commit instead of two per event: the drain's main
    cost); one failing event is recorded and retried without undoing the others, and within an
    event, one message that cannot be stored is recorded with its reason while the others go
    through (see ``_events_dispatch``). A payload we cannot parse is recorded with the reason and
    not retried (the same bytes would fail the same way).

    ``counted``: the drain's claim already counted this attempt. ``announced`` is called once
    the batch's chats are locked (the drain lets the next claim go then).
    """
    if not counted:
        with transaction.atomic():
            _relaxed_commit()
            # Counted in a transaction of its own, before the work: an event that kills its
            # worker every time still reaches MAX_PROCESSING_ATTEMPTS and stops being swept.
            attempted = WebhookEvent.objects.filter(
                pk__in=event_ids, processed_at__isnull=True
            ).update(attempts=F("attempts") + 1)
        if not attempted:
            return
    with transaction.atomic():
        _relaxed_commit()
        # Lock the rows: a second worker given the same events skips them (PostgreSQL) or waits
        # (SQLite serialises writers) and then finds them processed.
        claim = WebhookEvent.objects.filter(pk__in=event_ids, processed_at__isnull=True)
        claim = claim.order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            claim = claim.select_for_update(skip_locked=True, of=("self",))
        events = _with_numbers(list(claim))
        done, failures, problems = _events_dispatch(events, announced=announced)
        now = timezone.now()
        if clean := [event_id for event_id in done if event_id not in problems]:
            WebhookEvent.objects.filter(pk__in=clean).update(processed_at=now, error="")
        for event_id in done:
            if event_id in problems:
                WebhookEvent.objects.filter(pk=event_id).update(
                    processed_at=now, error=_problems_text(problems[event_id])
                )
    for event_id, error in failures.items():
        WebhookEvent.objects.filter(pk=event_id).update(error=error)
    if len(event_ids) > 1:
        # A failure inside a batch may be the batch's doing (a lock wait that PostgreSQL ended
        # as a deadlock with another worker's batch): each failed event gets one more try at
        # once, alone, rather than waiting for the sweep.
        for event_id in failures:
            _events_process([event_id])


def _with_numbers(events: list[WebhookEvent]) -> list[WebhookEvent]:
    """``events``, each holding its number (with its organization: new chats need it), one
    instance per number: a batch is usually hundreds of deliveries to one number, and joining
    it to every row built a number and an organization per delivery."""
    numbers = (
        WhatsAppNumber.objects.select_related("organization")
        .defer("access_token", "app_secret")  # processing needs neither
        .in_bulk({event.number_id for event in events if event.number_id is not None})
    )
    for event in events:
        if event.number_id is not None:
            event.number = numbers.get(event.number_id)
    return events


# Failures that say something about the item itself: a value a column refuses, a shape a
# receiver did not expect. The same item would fail the same way on every retry, so it is
# recorded with its reason and the rest of its delivery goes on. Anything else (the database or
# a broker unavailable, a deadlock) says nothing about the item: its delivery is retried.
ITEM_FAILURES = (DataError, ValueError, TypeError, AttributeError, LookupError)


def _events_dispatch(
    events: list[WebhookEvent], *, announced=None
) -> tuple[list[int], dict[int, str], dict[int, list[str]]]:
    """Publish the items of claimed deliveries; returns (ids done, {id: error} to retry,
    {id: [why an item was not processed, ...]} for deliveries done without some items).

    Each message (and each other item that is not a status) is dispatched in a savepoint of its
    own, so that a failure undoes only that item (a savepoint only where there is work: a
    delivery is usually one message). Statuses, the bulk of the traffic, are gathered and
    handed to the receivers once per number, so that a batch looks up its messages in one
    query; only when that fails are they applied one by one, to find the one at fault.
    Deliveries that cannot be processed at all are recorded as such here and are in no result.
    """
    done: list[int] = []
    failures: dict[int, str] = {}
    problems: dict[int, list[str]] = {}
    statuses: dict[int, list[tuple[int, channel_events.StatusUpdate]]] = {}  # by number
    inbound: dict[int, list[tuple[WebhookEvent, channel_events.InboundMessage]]] = {}
    numbers: dict[int, WhatsAppNumber] = {}
    parsed = [(event, *_event_items(event)) for event in events]
    _batch_announce(parsed)
    if announced is not None:
        announced()
    for event, items, error in parsed:
        numbers[event.number_id] = event.number
        try:
            if error:
                WebhookEvent.objects.filter(pk=event.pk).update(
                    processed_at=timezone.now(), error=error
                )
                continue
            for item in items:
                if isinstance(item, channel_events.RejectedItem):
                    logger.warning("Webhook event %s: %s", event.pk, item.describe())
                    problems.setdefault(event.pk, []).append(item.describe())
                elif isinstance(item, channel_events.StatusUpdate):
                    statuses.setdefault(event.number_id, []).append((event.pk, item))
                elif isinstance(item, channel_events.InboundMessage):
                    inbound.setdefault(event.number_id, []).append((event, item))
                elif problem := _item_dispatch(event, item):
                    problems.setdefault(event.pk, []).append(problem)
        except Exception as exc:
            logger.exception("Webhook event %s failed; it will be retried", event.pk)
            failures[event.pk] = f"{type(exc).__name__}: {exc}"[:2000]
            continue
        done.append(event.pk)
    for number_id, items in inbound.items():
        _messages_dispatch(numbers[number_id], items, failures, problems)
    for number_id, items in statuses.items():
        _statuses_dispatch(numbers[number_id], items, failures, problems)
    return [event_id for event_id in done if event_id not in failures], failures, problems


WRITING_ITEMS = (
    channel_events.InboundMessage,
    channel_events.OwnMessage,
    channel_events.ConnectionUpdate,
    channel_events.TemplateStatusUpdate,
    channel_events.PhoneNumberQualityUpdate,
)


def _item_dispatch(event: WebhookEvent, item) -> str | None:
    """Dispatch one item in its own savepoint; why it was not processed, if it says so itself
    (other failures propagate: the delivery is retried)."""
    if not isinstance(item, WRITING_ITEMS):  # only logged: no savepoint
        _dispatch(event.number, item)
        return None
    try:
        with transaction.atomic():
            _dispatch(event.number, item)
    except ITEM_FAILURES as exc:
        logger.exception("Webhook event %s: %s not processed", event.pk, _item_name(item))
        return f"{_item_name(item)}: {type(exc).__name__}: {exc}"
    return None


def _messages_dispatch(
    number: WhatsAppNumber,
    items: list[tuple[WebhookEvent, channel_events.InboundMessage]],
    failures: dict[int, str],
    problems: dict[int, list[str]],
) -> None:
    """Hand a number's customer messages to the receivers at once (the inbox stores them in a
    few statements per batch); if that fails, dispatch them one by one, each in its savepoint,
    so that only the message at fault is recorded as not processed."""
    try:
        with transaction.atomic():
            signals.messages_batch_received.send(
                sender=WhatsAppNumber, number=number, messages=[item for _event, item in items]
            )
        return
    except Exception:
        logger.info("Messages for number %s failed together; storing them one by one", number.pk)
    for event, item in items:
        if event.pk in failures:
            continue
        try:
            if problem := _item_dispatch(event, item):
                problems.setdefault(event.pk, []).append(problem)
        except Exception as exc:
            logger.exception("Webhook event %s failed; it will be retried", event.pk)
            failures[event.pk] = f"{type(exc).__name__}: {exc}"[:2000]


def _statuses_dispatch(
    number: WhatsAppNumber,
    items: list[tuple[int, channel_events.StatusUpdate]],
    failures: dict[int, str],
    problems: dict[int, list[str]],
) -> None:
    """Hand a number's statuses to the receivers at once; if one of them cannot be applied,
    apply them one by one so that only that one is recorded as not processed."""
    try:
        with transaction.atomic():
            _statuses_send(number, [status for _event_id, status in items])
        return
    except ITEM_FAILURES:
        logger.warning(
            "Statuses for number %s failed together; applying them one by one", number.pk
        )
    except Exception as exc:
        logger.exception("Statuses of webhook events failed; they will be retried")
        for event_id, _status in items:
            failures[event_id] = f"{type(exc).__name__}: {exc}"[:2000]
        return
    for event_id, status in items:
        try:
            with transaction.atomic():
                _statuses_send(number, [status])
        except ITEM_FAILURES as exc:
            logger.exception("Webhook event %s: %s not processed", event_id, _item_name(status))
            problems.setdefault(event_id, []).append(
                f"{_item_name(status)}: {type(exc).__name__}: {exc}"
            )
        except Exception as exc:
            logger.exception("Status of webhook event %s failed; it will be retried", event_id)
            failures[event_id] = f"{type(exc).__name__}: {exc}"[:2000]


def _statuses_send(number: WhatsAppNumber, statuses: list[channel_events.StatusUpdate]) -> None:
    signals.statuses_received.send(sender=WhatsAppNumber, number=number, statuses=statuses)


def _item_name(item) -> str:
    wamid = getattr(item, "wamid", "")
    return f"{item.kind} {wamid}" if wamid else item.kind


MAX_ERROR_LENGTH = 4000


def _problems_text(problems: list[str]) -> str:
    """What ``WebhookEvent.error`` says of a delivery processed without some of its items."""
    text = f"{len(problems)} item(s) not processed:\n" + "\n".join(
        problem[:500] for problem in problems
    )
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 3] + "..."


def _batch_announce(parsed: list[tuple[WebhookEvent, list, str]]) -> None:
    """Tell the receivers which customers and messages the batch will touch, before it touches
    any: they lock those rows in one fixed order (by id), so two workers processing batches
    that share chats wait for each other instead of deadlocking."""
    touched: dict[int, tuple[WhatsAppNumber, set, set]] = {}
    for event, items, _error in parsed:
        for item in items:
            _number, wa_ids, wamids = touched.setdefault(
                event.number_id, (event.number, set(), set())
            )
            if isinstance(item, channel_events.StatusUpdate):
                wamids.add(item.wamid)
            elif isinstance(item, channel_events.InboundMessage):
                wa_ids.add(item.wa_id or item.user_id)
    for number, wa_ids, wamids in touched.values():
        signals.batch_starting.send(
            sender=WhatsAppNumber, number=number, wa_ids=wa_ids, wamids=wamids
        )


def _event_items(event: WebhookEvent) -> tuple[list, str]:
    """The items of one stored delivery meant for its number, or why it cannot be processed."""
    if event.number is None:
        return [], "The number was removed."
    try:
        parsed = provider_for(event.number).parse_webhook(bytes(event.body))
    except channel_events.PayloadError as error:
        logger.warning("Webhook event %s has an unknown shape: %s", event.pk, error)
        return [], f"Unrecognised payload: {error}"[:2000]
    except IntegrationError as error:  # e.g. the number's provider is no longer available
        logger.warning("Webhook event %s cannot be parsed: %s", event.pk, error)
        return [], f"{error}"[:2000]
    except Exception as error:  # the parser promises PayloadError only; never lose the batch
        logger.exception("Webhook event %s: the parser failed", event.pk)
        return [], f"Unrecognised payload: {type(error).__name__}: {error}"[:2000]
    return [item for item in parsed if not _names_another_number(event.number, item)], ""


def _relaxed_commit() -> None:
    """Let this transaction commit without waiting for its WAL flush (PostgreSQL).

    Safe for processing only: the delivery itself was stored with a durable commit before it
    was acknowledged, so if the database crashed and lost the last milliseconds of processing,
    those events would simply be unprocessed again and the sweep would redo them (harmlessly).
    It spares each event one or two disk flushes, the main cost of draining a backlog.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _names_another_number(number: WhatsAppNumber, item) -> bool:
    item_pnid = getattr(item, "phone_number_id", None)
    if item_pnid is not None and item_pnid != number.phone_number_id:
        # Signed with this number's secret but naming another number: never let it reach
        # another number's (or another tenant's) data.
        logger.warning(
            "Webhook for number %s names phone_number_id %s; ignored", number.pk, item_pnid
        )
        return True
    return False


def _dispatch(number: WhatsAppNumber, item) -> None:
    if isinstance(item, channel_events.InboundMessage):
        signals.message_received.send(sender=WhatsAppNumber, number=number, message=item)
    elif isinstance(item, channel_events.OwnMessage):
        signals.message_echoed.send(sender=WhatsAppNumber, number=number, message=item)
    elif isinstance(item, channel_events.ConnectionUpdate):
        from integrations import web  # WhatsApp Web numbers' connection (QR, state)

        web.connection_apply(number=number, update=item)
    elif isinstance(item, channel_events.TemplateStatusUpdate):
        template_status_apply(number=number, update=item)
    elif isinstance(item, channel_events.PhoneNumberQualityUpdate):
        number_quality_apply(number=number, update=item)
    elif isinstance(item, channel_events.ValueErrors):
        for error in item.errors:
            logger.warning(
                "WhatsApp reported an error for number %s: #%s %s (%s)",
                number.pk,
                error.code,
                error.title,
                error.details,
            )
    else:
        logger.info("Webhook item %s for number %s recorded only", type(item).__name__, number.pk)


SWEEP_GRACE_SECONDS = 15  # a delivery younger than this still has its own task on the way
SWEEP_QUEUED_SECONDS = 300  # while the queue holds tasks, only this old a delivery was lost


def webhook_events_sweep(*, older_than_seconds: int | None = None) -> int:
    """Queue again the deliveries stored but never processed (a worker died, the broker lost
    the task or was down, a receiver failed). Reprocessing is harmless. Returns how many were
    queued: every one due, however many (a lost backlog of 10,000 is queued at once, in tasks
    of ``SWEEP_BATCH``, not 500 a minute).

    Due means older than a short grace, or, while the inbound queue still holds tasks (a
    backlog draining), older than ``SWEEP_QUEUED_SECONDS``: those tasks are not lost, only
    waiting, and queueing them twice would double the backlog. First attempts go in batches; an
    event that already failed goes alone, so that one event that kills its worker cannot hold
    back the others of its batch.
    """
    if older_than_seconds is None:
        waiting = tasks.queue_depth("inbound")
        older_than_seconds = SWEEP_QUEUED_SECONDS if waiting else SWEEP_GRACE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = WebhookEvent.objects.filter(
        processed_at__isnull=True, received_at__lt=cutoff, attempts__lt=MAX_PROCESSING_ATTEMPTS
    ).order_by("pk")
    after, queued, signalled = 0, 0, False
    while True:
        rows = list(pending.filter(pk__gt=after).values_list("pk", "attempts")[:SWEEP_CHUNK])
        if not rows:
            return queued
        fresh = [pk for pk, attempts in rows if attempts < 1]
        if fresh and webhook_drain_enabled():  # the drain takes every never-attempted delivery
            if not signalled:
                webhook_drain_signal(force=True)
            signalled, fresh = True, []
        for start in range(0, len(fresh), SWEEP_BATCH):
            webhook_events_queue(fresh[start : start + SWEEP_BATCH])
        for pk, attempts in rows:
            if attempts >= 1:
                webhook_events_queue([pk])
        queued += len(rows)
        after = rows[-1][0]


SWEEP_CHUNK = 5000
PRUNE_CHUNK = 5000


def webhook_events_prune(*, now=None) -> int:
    """Delete raw deliveries older than ``WEBHOOK_LOG_RETENTION_DAYS`` that are done with
    (processed, or given up after ``MAX_PROCESSING_ATTEMPTS``): they hold customers' names,
    phones and texts, which the messages' own retention policy and erasure govern, and are
    needed only to replay recent deliveries. Chunked, so a large backlog never holds one long
    transaction. Returns how many rows went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    done = WebhookEvent.objects.filter(received_at__lt=cutoff).filter(
        Q(processed_at__isnull=False) | Q(attempts__gte=MAX_PROCESSING_ATTEMPTS)
    )
    deleted = 0
    while True:
        ids = list(done.order_by().values_list("pk", flat=True)[:PRUNE_CHUNK])
        if not ids:
            return deleted
        deleted += WebhookEvent.objects.filter(pk__in=ids).delete()[0]


def _customer_entries_removed(body: bytes, wa_id: str) -> bytes | None:
    """``body`` without the contacts, messages and statuses of ``wa_id``; None when the
    customer's id would still be in it (or it is not a webhook JSON), so the row must go."""
    try:
        payload = json.loads(body)
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                for key, field in (("contacts", "wa_id"), ("messages", "from")):
                    if key in value:
                        value[key] = [i for i in value[key] if i.get(field) != wa_id]
                if "statuses" in value:
                    value["statuses"] = [
                        s for s in value["statuses"] if s.get("recipient_id") != wa_id
                    ]
    except (ValueError, AttributeError, TypeError):
        return None
    cleaned = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return None if json.dumps(wa_id).encode() in cleaned else cleaned


def webhook_log_erase(*, organization_id: int, wa_id: str) -> int:
    """Remove one customer from the raw webhook log (LGPD erasure): their entries are cut out
    of each delivery that mentions them, so the other customers' messages in a shared
    delivery still replay; a delivery that would still name them is deleted. Runs inside the
    erasure's transaction. Returns how many rows changed."""
    rows = WebhookEvent.objects.filter(
        Q(organization_id=organization_id) | Q(organization__isnull=True),
        body__bytes_contains=json.dumps(wa_id).encode(),
    )
    changed = 0
    for event in rows.select_for_update().only("pk", "body"):
        cleaned = _customer_entries_removed(bytes(event.body), wa_id)
        if cleaned is None:
            WebhookEvent.objects.filter(pk=event.pk).delete()
        else:
            WebhookEvent.objects.filter(pk=event.pk).update(body=cleaned)
        changed += 1
    return changed


# --- Templates and number health ------------------------------------------------------------


def template_status_apply(*, number: WhatsAppNumber, update) -> int:
    """Apply ``message_template_status_update`` to this number's WABA templates."""
    templates = MessageTemplate.objects.filter(
        organization_id=number.organization_id, number__waba_id=number.waba_id
    )
    by_id = templates.filter(meta_id=str(update.template_id)) if update.template_id else None
    target = (
        by_id
        if by_id is not None and by_id.exists()
        else templates.filter(name=update.template_name, language=update.language)
    )
    # Upper-casing may lengthen a string ("ß" is "SS"): clamp to the column again.
    status = update.event.upper()[:TEMPLATE_STATUS_MAX]
    return target.update(status=status, rejected_reason=update.reason or "")


def number_quality_apply(*, number: WhatsAppNumber, update) -> None:
    digits = re.sub(r"\D", "", update.display_phone_number or "")
    if digits and digits != re.sub(r"\D", "", number.display_phone_number):
        logger.info("Quality update for %s ignored on number %s", digits, number.pk)
        return
    fields = {}
    if getattr(update, "current_limit", ""):
        fields["messaging_limit"] = update.current_limit
    if getattr(update, "event", ""):
        fields["quality_rating"] = update.event
    if fields:
        WhatsAppNumber.objects.filter(pk=number.pk).update(**fields)


def templates_sync(*, number: WhatsAppNumber) -> int:
    """Fetch the WABA's templates into ``MessageTemplate`` rows; returns how many were seen.

    Templates gone from the WABA are kept (campaigns may point at them) but marked DELETED.
    """
    remote = provider_for(number).list_templates()
    seen = []
    with transaction.atomic():
        for item in remote:
            template, _created = MessageTemplate.objects.update_or_create(
                number=number,
                name=item["name"],
                language=item.get("language", ""),
                defaults={
                    "organization_id": number.organization_id,
                    "meta_id": str(item.get("id", "")),
                    "category": item.get("category", ""),
                    "status": item.get("status", ""),
                    "components": item.get("components", []),
                    "rejected_reason": "",
                },
            )
            seen.append(template.pk)
        MessageTemplate.objects.filter(number=number).exclude(pk__in=seen).update(status="DELETED")
    logger.info("Synced %d templates for number %s", len(remote), number.pk)
    return len(remote)
