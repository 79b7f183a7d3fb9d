"""Durable follow-up work: recorded with the change, dispatched from the database.

A change that needs work done after it (campaign reply bookkeeping, automations, a media
download, an AI reply) calls ``add(key, payload)`` inside its transaction: an ``OutboxEntry``
row commits with the change or not at all. After the commit one task per entry is queued to run
it; if the broker is down or loses the task (a Redis restart without persistence), the sweep
(every ``SWEEP_SECONDS``, on the default cluster) runs every entry older than ``GRACE_SECONDS``
itself, as many as there are, so a Redis loss delays follow-up work but never drops it.

Apps register their handlers by key in ``AppConfig.ready`` (``register``); a handler takes the
payload (JSON) and must be idempotent: an entry is deleted in the transaction that runs it, but
a handler that sends something outside the database may still run twice after a crash.

An entry that failed ``MAX_ATTEMPTS`` times is *dead*: the sweep leaves it alone, and it stays
in the table until an operator retries it (``retry``: attempts back to zero, queued again) or
discards it (``discard``). ``dead()`` lists them; the ops page (reports) shows them and an
operational alert says when there are any.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from kernel import tasks
from kernel.models import OutboxEntry

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 10
GRACE_SECONDS = 5  # an entry younger than this still has its own task on the way
SWEEP_CHUNK = 200
SWEEP_BUDGET_SECONDS = 50  # the next sweep goes on where this one stopped
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Handler:
    key: str
    func: Callable[[object], None]
    queue: str = "default"


_handlers: dict[str, Handler] = {}


def register(key: str, func: Callable[[object], None], *, queue: str = "default") -> None:
    """Called from ``AppConfig.ready``: ``func(payload)`` runs the entries added under ``key``."""
    if len(key) > 64:
        raise ValueError(f"Outbox key {key!r} is longer than 64 characters")
    if queue not in tasks.QUEUES:
        raise ValueError(f"Unknown queue {queue!r}")
    _handlers[key] = Handler(key, func, queue)


def add(key: str, payload, *, organization_id: int | None = None) -> OutboxEntry:
    """Record work for after the current transaction commits (one INSERT) and queue its task
    after the commit. Outside a transaction it commits at once. ``organization_id`` names
    whose work it is on the ops page should it stop retrying."""
    handler = _handlers.get(key)
    if handler is None:
        raise ValueError(f"No outbox handler {key!r} is registered")
    entry = OutboxEntry.objects.create(key=key, payload=payload, organization_id=organization_id)
    transaction.on_commit(lambda: _dispatch(entry.pk, handler.queue))
    return entry


def _dispatch(entry_id: int, queue: str) -> None:
    try:
        tasks.dispatch("kernel.outbox.run", [entry_id], queue=queue)
    except Exception:  # the broker is down: the entry is stored, the sweep runs it
        logger.warning("Outbox entry %s stored but not queued; the sweep will run it", entry_id)


def run(entry_ids: list[int]) -> int:
    """Run these entries (a task, or the sweep); those another worker holds or already ran are
    skipped. Returns how many ran."""
    done = 0
    for entry_id in entry_ids:
        done += _run_one(entry_id)
    return done


def _run_one(entry_id: int) -> bool:
    try:
        with transaction.atomic():
            claim = OutboxEntry.objects.filter(pk=entry_id)
            if connection.features.has_select_for_update_skip_locked:
                claim = claim.select_for_update(skip_locked=True)
            entry = claim.first()
            if entry is None:
                return False
            handler = _handlers.get(entry.key)
            if handler is None:
                raise LookupError(f"No outbox handler {entry.key!r} is registered")
            handler.func(entry.payload)
            OutboxEntry.objects.filter(pk=entry_id).delete()
        return True
    except Exception as exc:
        logger.exception("Outbox entry %s failed; it will be retried", entry_id)
        attempts = (
            OutboxEntry.objects.filter(pk=entry_id).values_list("attempts", flat=True).first()
        )
        if attempts is not None:
            delay = min(3600, 10 * 2 ** min(attempts, 10))
            OutboxEntry.objects.filter(pk=entry_id).update(
                attempts=attempts + 1,
                error=f"{type(exc).__name__}: {exc}"[:2000],
                run_after=timezone.now() + timedelta(seconds=delay),
            )
        if settings.TASK_RUNNER == "inline":
            raise
        return False


def sweep(*, grace_seconds: float = GRACE_SECONDS, budget_seconds: float = SWEEP_BUDGET_SECONDS):
    """Run every entry due and older than the grace (its own task was lost, or it failed and
    its backoff is over), in id order, until none is left or the budget is spent. Returns how
    many ran."""
    started = time.monotonic()
    after, ran = 0, 0
    while time.monotonic() - started < budget_seconds:
        cutoff = timezone.now() - timedelta(seconds=grace_seconds)
        ids = list(
            OutboxEntry.objects.filter(
                pk__gt=after, run_after__lte=cutoff, attempts__lt=MAX_ATTEMPTS
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:SWEEP_CHUNK]
        )
        if not ids:
            break
        for entry_id in ids:
            try:
                ran += _run_one(entry_id)
            except Exception:  # recorded by _run_one (inline mode re-raises)
                if settings.TASK_RUNNER == "inline":
                    raise
        after = ids[-1]
    return ran


def pending() -> int:
    """Entries not yet run (health and benches)."""
    return OutboxEntry.objects.count()


def dead():
    """Entries that failed ``MAX_ATTEMPTS`` times: the sweep no longer runs them. Oldest first."""
    return OutboxEntry.objects.filter(attempts__gte=MAX_ATTEMPTS).order_by("created_at", "pk")


def retry(entry_ids: list[int]) -> list[OutboxEntry]:
    """Give these dead entries a fresh start: attempts back to zero, due now, a task queued
    after the commit (the sweep runs them if the broker is down). Returns those retried, as
    they were (their key, attempts and last error, for the audit)."""
    with transaction.atomic():
        entries = list(dead().filter(pk__in=entry_ids).select_for_update())
        OutboxEntry.objects.filter(pk__in=[e.pk for e in entries]).update(
            attempts=0, run_after=timezone.now()
        )
        for entry in entries:
            handler = _handlers.get(entry.key)
            queue = handler.queue if handler else "default"
            transaction.on_commit(lambda pk=entry.pk, q=queue: _dispatch(pk, q))
    return entries


def discard(entry_ids: list[int]) -> list[OutboxEntry]:
    """Delete these dead entries (their work will not happen). Returns those deleted."""
    with transaction.atomic():
        entries = list(dead().filter(pk__in=entry_ids).select_for_update())
        OutboxEntry.objects.filter(pk__in=[e.pk for e in entries]).delete()
    return entries
