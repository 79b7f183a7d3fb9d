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
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.dispatch import receiver
from django.utils.module_loading import import_string
from django_q.brokers import redis_broker
from django_q.signals import post_execute_in_worker

from kernel import tracing
from kernel.cache import own_command

logger = logging.getLogger(__name__)

# Queue name → threads in embedded mode. "inbound" is separate so bulk work never starves it.
QUEUES = {"inbound": 2, "default": 2, "bulk": 2}
# AI auto-replies mostly wait on the model (seconds each): many threads, so one slow answer never
# holds up another chat's (assistants' issue; run its cluster with many workers in production).
QUEUES["ai"] = 64

PERIODIC: dict[str, int] = {}  # dotted path → interval in seconds
HEARTBEAT_KEY = "porfin:worker-heartbeat"  # one key per queue: ``HEARTBEAT_KEY:<queue>``

_executors: dict[str, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def register_periodic(func_path: str, seconds: int) -> None:
    """Called from AppConfig.ready(): run ``func_path`` every ``seconds`` in both modes."""
    PERIODIC[func_path] = seconds


def enqueue(func_path: str, *args, queue: str = "default") -> None:
    if queue not in QUEUES:
        raise ValueError(f"Unknown queue {queue!r}")
    carried = tracing.current()  # the request's ids, now: the commit may come after it

    def after_commit():
        if settings.TASK_RUNNER != "django_q":
            with tracing.carrying(carried):
                dispatch(func_path, *args, queue=queue)
            return
        held = _held.get()
        if held is not None:
            held.append((carried, func_path, args, queue))
            return
        _queue_logged(carried, func_path, args, queue)

    transaction.on_commit(after_commit)


def _queue_logged(carried: dict, func_path: str, args: tuple, queue: str) -> None:
    with tracing.carrying(carried):
        try:
            dispatch(func_path, *args, queue=queue)
        except Exception:  # the broker is down: the change is committed; don't break the
            # caller or the other after-commit work (durable work goes through the outbox)
            logger.exception(
                "Task %s not queued on %s: the broker is unreachable", func_path, queue
            )


# Tasks committed by a request whose answer goes out before they are queued (a list while
# such a request runs in this context; see ``held_until_answered``).
_held: ContextVar[list | None] = ContextVar("tasks_held", default=None)


def held_until_answered() -> AbstractContextManager[list]:
    """Within: the tasks that commits queue on django-q2's broker wait in the yielded list,
    and the caller hands them to ``queue_held`` once the request's answer is on its way
    (``config.asgi.ApiKeyDjangoHandler``). Queueing one is a Redis round trip and the
    package's signing, about a tenth of an API send's time, which the client need not wait for.

    A process that dies between the answer and the queueing loses the queueing, as a crash
    between a commit and its queueing always could: what must not be lost is swept from the
    database (``inbox.tasks.requeue_lost_sends``, the outbox). Other runners are not held
    (the embedded thread pool's hand-over costs nothing; tests run tasks inline)."""
    return tracing.collecting(_held)


def queue_held(held: list) -> None:
    """Queue what ``held_until_answered`` held, in the order committed."""
    for carried, func_path, args, queue in held:
        _queue_logged(carried, func_path, args, queue)


def dispatch(func_path: str, *args, queue: str = "default") -> None:
    """Hand a task to the runner now (use ``enqueue`` inside transactions)."""
    runner = settings.TASK_RUNNER
    if runner == "inline":
        run_traced(tracing.current(), func_path, *args)
    elif runner == "thread":
        _executor(queue).submit(run_traced, tracing.current(), func_path, *args)
    else:  # the request id and organization travel in the package (kernel.tracing)
        from django_q.tasks import async_task

        cluster = cluster_name(queue)
        if time.monotonic() < _broker_down_until.get(cluster, 0.0):
            raise BrokerUnavailable(f"the {cluster} broker failed moments ago")
        # Inbound tasks are many and their outcome lives in our own rows (WebhookEvent): not
        # saving their successes spares django-q2's monitor a scan of up to save_limit rows
        # per task (its pruning), which otherwise costs more than the task itself.
        try:
            async_task(
                func_path,
                *args,
                cluster=cluster,
                task_name=func_path,
                save=queue != "inbound",
                broker=_broker(cluster),
            )
        except Exception:
            # Don't pay a connection timeout per task while the broker is down: fail fast for
            # a few seconds (callers' durable work is in the outbox or their own rows).
            _broker_down_until[cluster] = time.monotonic() + BROKER_RETRY_SECONDS
            raise


class BrokerUnavailable(RuntimeError):
    """The task broker failed within the last ``BROKER_RETRY_SECONDS``."""


BROKER_RETRY_SECONDS = 5.0
_broker_down_until: dict[str, float] = {}


_brokers: dict = {}


def _broker(cluster: str):
    """One django-q2 broker per cluster and process: ``async_task`` would otherwise build a new
    one, with a new Redis connection, for every task."""
    if cluster not in _brokers:
        from django_q.brokers import get_broker

        broker = get_broker(cluster)
        if type(broker) is redis_broker.Redis:  # the default, not a broker_class of settings
            broker = OwnConnectionRedis(list_key=cluster)
        _brokers[cluster] = broker
    return _brokers[cluster]


class OwnConnectionRedis(redis_broker.Redis):
    """django-q2's Redis broker queueing on the thread's own connection
    (``kernel.cache.own_command``): redis-py's command path was half of what queueing an API
    send's delivery cost."""

    def enqueue(self, task):
        return own_command(self.connection, "RPUSH", self.list_key, task)


def cluster_name(queue: str) -> str:
    """django-q2 cluster (= broker list) that serves ``queue``; see the README's worker command."""
    base = settings.Q_CLUSTER["name"]
    return base if queue == "default" else f"{base}-{queue}"


def run_traced(carried: dict, func_path: str, *args):
    """``run`` with the queuing request's ids on its log lines, and its own one line."""
    scope = tracing.TaskScope(func_path, carried)
    ok = False
    try:
        result = run(func_path, *args)
        ok = True
        return result
    finally:
        scope.finish(ok=ok)


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


HEARTBEAT_SECONDS = 30


def heartbeat(queue: str = "default") -> None:
    """Run by a worker of ``queue``'s cluster: proves broker and workers both work."""
    cache.set(f"{HEARTBEAT_KEY}:{queue}", time.time(), timeout=None)


def last_heartbeat(queue: str = "default") -> float | None:
    return cache.get(f"{HEARTBEAT_KEY}:{queue}")


def queue_depth(queue: str) -> int | None:
    """Tasks waiting in ``queue``'s broker (None when the runner has no broker to ask)."""
    if settings.TASK_RUNNER != "django_q":
        executor = _executors.get(queue)
        return executor._work_queue.qsize() if executor is not None else 0
    try:
        return _broker(cluster_name(queue)).queue_size()
    except Exception:  # the broker is down: health says so through the heartbeat's age
        return None


class Ticker(threading.Thread):
    """Runs periodic work at its interval, in seconds, in both modes.

    Embedded mode: every registered periodic task, on this process's threads. Production: one
    ticker in each ``qcluster`` process queues its own cluster's heartbeat and, in the default
    cluster, the periodic tasks that run more often than once a minute (django-q2 schedules
    count in whole minutes; ``ensure_schedules`` keeps the rest there). Several default
    clusters (several boxes) share each period through a cache claim, so a 10 s task runs
    about every 10 s in total, not once per box.
    """

    def __init__(self, *, max_seconds: float, heartbeat_queues: list[str], shared: bool):
        super().__init__(name="periodic-ticker", daemon=True)
        self.max_seconds = max_seconds  # only periodic tasks at most this often
        self.heartbeat_queues = heartbeat_queues
        self.shared = shared
        self.due: dict[str, float] = {}
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            self.tick()
            self.stopped.wait(1)

    def tick(self) -> None:
        now = time.monotonic()
        work = [
            (path, (), seconds, "default")
            for path, seconds in list(PERIODIC.items())  # apps register theirs in ready()
            if seconds <= self.max_seconds
        ]
        work += [
            ("kernel.tasks.heartbeat", (queue,), HEARTBEAT_SECONDS, queue)
            for queue in self.heartbeat_queues
        ]
        for func_path, args, seconds, queue in work:
            key = f"{func_path}{args}"
            if self.due.get(key, 0) > now:
                continue
            self.due[key] = now + seconds
            if self.shared and not cache.add(f"porfin:tick:{key}", 1, timeout=max(1, seconds - 1)):
                continue  # another process took this period
            try:
                dispatch(func_path, *args, queue=queue)
            except Exception:  # the broker is down: the next period tries again
                logger.exception("Periodic task %s not queued", func_path)


_ticker: Ticker | None = None


def start_embedded_worker() -> None:
    """Start the ticker once per process (called when the ASGI application loads)."""
    global _ticker
    if settings.TASK_RUNNER != "thread" or _ticker is not None:
        return
    _ticker = Ticker(max_seconds=float("inf"), heartbeat_queues=list(QUEUES), shared=False)
    _ticker.start()


WORKER_NICE = 10  # default; ``Q_WORKER_NICE`` sets it (0: same priority as the web processes)


def lower_worker_priority() -> None:
    """Called in a ``qcluster`` process before it starts its workers (they inherit it): on a
    box shared with the web processes, background work yields the CPU to them, so a drain of
    thousands of events does not stretch the webhooks' acknowledgement tail (issue 21). The
    workers still get the idle CPU, which is nearly all of it. 10 rather than 5: measured with
    ``bench/webhook_ingest.py`` (the README's ``Q_WORKER_NICE`` row)."""
    try:
        nice = min(int(os.environ.get("Q_WORKER_NICE", WORKER_NICE)), 19)
    except ValueError:
        nice = WORKER_NICE
    if nice > 0:
        try:
            os.nice(nice)
        except OSError:  # not permitted here: run at the default priority
            logger.warning("Could not lower the workers' priority by %s", nice)
        _lower_autogroup(nice)


def _lower_autogroup(nice: int) -> None:
    """Linux's autogroup (on by default where processes run outside a CPU cgroup) shares the
    CPU between sessions first and applies a process's nice only inside its own session: a
    cluster started in a session of its own got as much CPU as the web processes whatever its
    nice. The session's own priority is lowered too, but only when the session is this
    process's (it leads it), so web processes sharing a terminal's session are never slowed."""
    path = "/proc/self/autogroup"
    if not os.path.exists(path) or os.getsid(0) != os.getpid():
        return
    try:
        with open(path, "w") as autogroup:
            autogroup.write(str(nice))
    except OSError as error:  # e.g. a read-only /proc in a container, where cgroups decide
        logger.info("The cluster's session priority was left as is: %s", error)


def start_cluster_ticker(cluster: str) -> None:
    """Called in a ``qcluster`` process (``accounts.apps``): its cluster's heartbeat and, for
    the default cluster, the sub-minute periodic tasks."""
    global _ticker
    if settings.TASK_RUNNER != "django_q" or _ticker is not None:
        return
    queue = next((q for q in QUEUES if cluster_name(q) == cluster), None)
    if queue is None:
        return
    sub_minute = 59 if queue == "default" else 0
    _ticker = Ticker(max_seconds=sub_minute, heartbeat_queues=[queue], shared=True)
    _ticker.start()


def ensure_schedules(**_kwargs) -> None:
    """Mirror the periodic tasks of a minute or more into django-q2 schedules (run after
    migrate) for ``qcluster``; shorter ones run on the default cluster's ticker."""
    from django_q.models import Schedule

    for func_path, seconds in PERIODIC.items():
        if seconds < 60:
            Schedule.objects.filter(name=func_path).delete()
            continue
        Schedule.objects.update_or_create(
            name=func_path,
            defaults={
                "func": func_path,
                "schedule_type": Schedule.MINUTES,
                "minutes": seconds // 60,
                "repeats": -1,
            },
        )
    Schedule.objects.filter(name="kernel.tasks.heartbeat").delete()  # now per cluster


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
    from kernel import realtime

    realtime.flush()
