"""One way to run background work, in both modes.

``enqueue("app.tasks.func", *ids)`` runs the function after the current transaction commits:

* ``TASK_RUNNER="django_q"`` (production, ``REDIS_URL`` set): queued on django-q2's broker and
  run by ``manage.py qcluster`` workers, in the named queue's cluster.
* ``"thread"`` (embedded default): on a small thread pool inside the web process, so that
  events the task publishes reach browsers through the in-memory channel layer. A ticker thread
  runs the periodic tasks that ``qcluster`` would run from django-q2 schedules.
* ``"inline"`` (tests): at once, in the caller.

Tasks take ids, load rows and call services; they must be idempotent, because correctness comes
from the database (claims with conditional updates, unique keys), never from the queue.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.dispatch import receiver
from django.utils.module_loading import import_string
from django_q.signals import post_execute_in_worker

logger = logging.getLogger(__name__)

# Queue name → threads in embedded mode. "inbound" is separate so bulk work never starves it.
QUEUES = {"inbound": 2, "default": 2, "bulk": 2}
# AI auto-replies mostly wait on the model (seconds each): many threads, so one slow answer never
# holds up another chat's (assistants' issue; run its cluster with many workers in production).
QUEUES["ai"] = 64

PERIODIC: dict[str, int] = {}  # dotted path → interval in seconds
HEARTBEAT_KEY = "porfin:worker-heartbeat"

_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def register_periodic(func_path: str, seconds: int) -> None:
    """Called from AppConfig.ready(): run ``func_path`` every ``seconds`` in both modes."""
    PERIODIC[func_path] = seconds


def enqueue(func_path: str, *args, queue: str = "default") -> None:
    if queue not in QUEUES:
        raise ValueError(f"Unknown queue {queue!r}")
    transaction.on_commit(lambda: dispatch(func_path, *args, queue=queue))


def dispatch(func_path: str, *args, queue: str = "default") -> None:
    """Hand a task to the runner now (use ``enqueue`` inside transactions)."""
    runner = settings.TASK_RUNNER
    if runner == "inline":
        run(func_path, *args)
    elif runner == "thread":
        _executor(queue).submit(run, func_path, *args)
    else:
        from django_q.tasks import async_task

        # Inbound tasks are many and their outcome lives in our own rows (WebhookEvent): not
        # saving their successes spares django-q2's monitor a scan of up to save_limit rows
        # per task (its pruning), which otherwise costs more than the task itself.
        async_task(
            func_path,
            *args,
            cluster=cluster_name(queue),
            task_name=func_path,
            save=queue != "inbound",
            broker=_broker(cluster_name(queue)),
        )


_brokers: dict = {}


def _broker(cluster: str):
    """One django-q2 broker per cluster and process: ``async_task`` would otherwise build a new
    one, with a new Redis connection, for every task."""
    if cluster not in _brokers:
        from django_q.brokers import get_broker

        _brokers[cluster] = get_broker(cluster)
    return _brokers[cluster]


def cluster_name(queue: str) -> str:
    """django-q2 cluster (= broker list) that serves ``queue``; see the README's worker command."""
    base = settings.Q_CLUSTER["name"]
    return base if queue == "default" else f"{base}-{queue}"


def run(func_path: str, *args):
    """Run one task, with fresh database connections around it like a django-q2 worker."""
    _close_old_connections()
    try:
        return import_string(func_path)(*args)
    except Exception:
        logger.exception("Task %s%r failed", func_path, args)
        if settings.TASK_RUNNER == "inline":
            raise
    finally:
        _close_old_connections()


def _close_old_connections() -> None:
    # Inline tasks may run inside a test's transaction (TestCase + captureOnCommitCallbacks),
    # where closing the connection would lose it; workers are never inside one.
    if not transaction.get_connection().in_atomic_block:
        close_old_connections()


def _executor(queue: str) -> ThreadPoolExecutor:
    with _executors_lock:
        if queue not in _executors:
            _executors[queue] = ThreadPoolExecutor(
                QUEUES[queue], thread_name_prefix=f"task-{queue}"
            )
        return _executors[queue]


def heartbeat() -> None:
    cache.set(HEARTBEAT_KEY, time.time(), timeout=None)


def last_heartbeat() -> float | None:
    return cache.get(HEARTBEAT_KEY)


register_periodic("config.tasks.heartbeat", 30)


class Ticker(threading.Thread):
    """Embedded mode's scheduler: runs every registered periodic task on its interval."""

    def __init__(self):
        super().__init__(name="periodic-ticker", daemon=True)
        self.due: dict[str, float] = {}

    def run(self):
        while True:
            now = time.monotonic()
            for func_path, seconds in list(PERIODIC.items()):
                if self.due.get(func_path, 0) <= now:
                    self.due[func_path] = now + seconds
                    _executor("default").submit(run, func_path)
            time.sleep(1)


_ticker: Ticker | None = None


def start_embedded_worker() -> None:
    """Start the ticker once per process (called when the ASGI application loads)."""
    global _ticker
    if settings.TASK_RUNNER != "thread" or _ticker is not None:
        return
    _ticker = Ticker()
    _ticker.start()


def ensure_schedules(**_kwargs) -> None:
    """Mirror ``PERIODIC`` into django-q2 schedules (run after migrate) for ``qcluster``."""
    from django_q.models import Schedule

    for func_path, seconds in PERIODIC.items():
        Schedule.objects.update_or_create(
            name=func_path,
            defaults={
                "func": func_path,
                "schedule_type": Schedule.MINUTES,
                "minutes": max(1, seconds // 60),
                "repeats": -1,
            },
        )


def enqueue_in(seconds: float, func_path: str, *args, queue: str = "default") -> None:
    """Like ``enqueue``, but run no sooner than ``seconds`` from now (retries with backoff).

    ``django_q``: a one-off django-q2 schedule for the queue's cluster (the cluster's scheduler
    checks about every 30 s, so short waits round up). ``thread``: a timer thread. ``inline``
    (tests): at once after commit, since tests do not wait out backoffs.
    """
    if queue not in QUEUES:
        raise ValueError(f"Unknown queue {queue!r}")

    def later():
        runner = settings.TASK_RUNNER
        if runner == "inline":
            run(func_path, *args)
        elif runner == "thread":
            timer = threading.Timer(
                seconds, dispatch, args=(func_path, *args), kwargs={"queue": queue}
            )
            timer.daemon = True
            timer.start()
        else:
            from datetime import timedelta

            from django.utils import timezone
            from django_q.models import Schedule

            Schedule.objects.create(
                name=f"{func_path}{args!r}@{time.time():.3f}"[:100],
                func=func_path,
                args=repr(tuple(args)),
                schedule_type=Schedule.ONCE,
                repeats=-1,  # a ONCE schedule with negative repeats is deleted after it runs
                next_run=timezone.now() + timedelta(seconds=seconds),
                cluster=cluster_name(queue),
            )

    transaction.on_commit(later)


@receiver(post_execute_in_worker, dispatch_uid="porfin-live-events-flush")
def _live_events_flush(sender, **kwargs):
    """A django-q2 worker may exit right after a task (``recycle``): the live events the task
    published go out first."""
    from config import realtime

    realtime.flush()
