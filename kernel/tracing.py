"""Request and task ids in every log line, and one log line per request and per task.

A request gets an id (the proxy's ``X-Request-ID`` when it sent a sane one, else a new one),
returned in the response's ``X-Request-ID``. The id and the organization ride along to every
task the request queues (``kernel.tasks.dispatch`` captures them; in ``qcluster`` workers they
travel inside django-q2's task package), so a customer's complaint can be followed from the
web line to the worker lines. ``config.logs`` puts them on every record.
"""

import contextlib
import contextvars
import logging
import re
import time
import uuid

from django.utils.functional import empty
from django_q.signals import post_execute_in_worker, pre_enqueue, pre_execute

request_logger = logging.getLogger("porfin.request")
task_logger = logging.getLogger("porfin.task")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_task_id: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")
_organization_id: contextvars.ContextVar = contextvars.ContextVar("organization_id", default=None)
_request: contextvars.ContextVar = contextvars.ContextVar("request", default=None)

HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # never a log-injection vector


def new_id() -> str:
    return uuid.uuid4().hex


def organization_id():
    """The organization of the current request (read late: the tenant middleware sets it after
    this one starts) or the one the current task was queued for."""
    request = _request.get()
    organization = getattr(request, "organization", None) if request is not None else None
    return organization.pk if organization is not None else _organization_id.get()


def current() -> dict:
    """What a task queued now carries along: ``{"request_id", "organization_id"}`` (empty
    values left out)."""
    values = {"request_id": _request_id.get(), "organization_id": organization_id()}
    return {key: value for key, value in values.items() if value}


def fields() -> dict:
    """The ids for a log record."""
    values = {**current(), "task_id": _task_id.get()}
    return {key: value for key, value in values.items() if value}


@contextlib.contextmanager
def carrying(carried: dict):
    """Within: ``current()`` answers ``carried`` (a task queued after commit keeps the ids of
    the request that queued it, even when the commit comes later)."""
    tokens = (
        _request_id.set(carried.get("request_id", "")),
        _organization_id.set(carried.get("organization_id")),
        _request.set(None),
    )
    try:
        yield
    finally:
        _request.reset(tokens[2])
        _organization_id.reset(tokens[1])
        _request_id.reset(tokens[0])


@contextlib.contextmanager
def collecting(var: contextvars.ContextVar):
    """Within: ``var`` holds a new list, yielded (what a request's commits hold back until its
    answer is on its way: ``kernel.tasks`` and ``kernel.realtime``)."""
    held: list = []
    token = var.set(held)
    try:
        yield held
    finally:
        var.reset(token)


class TaskScope:
    """Sets the task's ids for its run, logs its one line at the end, restores the caller's."""

    def __init__(self, name: str, carried: dict | None, task_id: str | None = None):
        self.name = name
        self.tokens = [
            _task_id.set(task_id or new_id()),
            _request_id.set((carried or {}).get("request_id", "")),
            _organization_id.set((carried or {}).get("organization_id")),
            _request.set(None),
        ]
        self.started = time.monotonic()

    def finish(self, *, ok: bool) -> None:
        task_logger.info(
            "task %s %s in %.1f ms",
            self.name,
            "ok" if ok else "failed",
            (time.monotonic() - self.started) * 1000,
            extra={"task": self.name, "success": ok},
        )
        for var, token in zip(
            (_task_id, _request_id, _organization_id, _request), self.tokens, strict=True
        ):
            var.reset(token)


class RequestIdMiddleware:
    """Outermost: the request's id for every log line of the request, the response header, and
    the request's one log line (method, path with secrets scrubbed, status, time, user)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = request.headers.get(HEADER, "")
        request_id = sent if _SANE_ID.match(sent) else new_id()
        request.request_id = request_id
        tokens = (_request_id.set(request_id), _request.set(request), _task_id.set(""))
        started = time.monotonic()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response[HEADER] = request_id
            return response
        finally:
            request_logger.info(
                "%s %s %s in %.1f ms",
                request.method,
                request.path,
                status,
                (time.monotonic() - started) * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "user_id": _user_id(request),
                },
            )
            _task_id.reset(tokens[2])
            _request.reset(tokens[1])
            _request_id.reset(tokens[0])


def _user_id(request):
    """The signed-in user's id if the request already looked it up (never a query of its own:
    static files and probes are logged too)."""
    user = getattr(request, "user", None)
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is None or wrapped is empty or not wrapped.is_authenticated:
        return None
    return wrapped.pk


# --- django-q2 workers ---------------------------------------------------------------------

_scopes: dict[str, TaskScope] = {}


def _on_enqueue(sender, task, **kwargs):
    carried = current()
    if carried:
        task["porfin_context"] = carried


def _on_execute(sender, func, task, **kwargs):
    _scopes[task.get("id", "")] = TaskScope(
        task.get("name") or str(task.get("func")), task.get("porfin_context"), task.get("id")
    )


def _on_executed(sender, func, task, **kwargs):
    scope = _scopes.pop(task.get("id", ""), None)
    if scope is not None:
        scope.finish(ok=bool(task.get("success")))


pre_enqueue.connect(_on_enqueue, dispatch_uid="porfin-tracing-enqueue")
pre_execute.connect(_on_execute, dispatch_uid="porfin-tracing-execute")
post_execute_in_worker.connect(_on_executed, dispatch_uid="porfin-tracing-executed")
