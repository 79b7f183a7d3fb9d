"""Health endpoints for load balancers and monitors, as JSON.

* ``GET /healthz/live``: the process answers (no database, no channel layer). Served by the
  ASGI application itself before Django (``config.asgi``), so a probe costs almost nothing.
* ``GET /healthz/ready`` (and ``/healthz``): this web process can serve: the database and the
  channel layer answer. 200 or 503. Workers are *not* part of it: a dead worker must not take
  every web process out of a load balancer.
* ``GET /healthz/workers``: each worker cluster's heartbeat age and queue depth, for monitors
  and the operator (200 when every cluster beat recently, else 503; it never affects routing).
"""

import asyncio
import time
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from kernel import tasks

LIVE_BODY = b'{"status":"ok"}'


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "engine": connection.vendor}
    except Exception as error:  # any driver error means "down"
        return {"ok": False, "error": str(error).splitlines()[0][:200]}


async def _check_channel_layer() -> dict:
    """Send a message to a fresh channel and read it back, on the server's own loop."""
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer configured"}
    backend = type(layer).__name__
    try:
        async with asyncio.timeout(3):
            channel = await layer.new_channel()
            marker = uuid.uuid4().hex
            await layer.send(channel, {"type": "health.ping", "marker": marker})
            received = await layer.receive(channel)
        return {"ok": received.get("marker") == marker, "backend": backend}
    except Exception as error:
        return {"ok": False, "backend": backend, "error": repr(error)[:200]}


def workers_status() -> dict:
    """{queue: {"ok", "heartbeat_age_seconds", "queued"}} for every worker cluster."""
    if settings.TASK_RUNNER == "inline":
        return {queue: {"ok": True, "runner": "inline"} for queue in tasks.QUEUES}
    now = time.time()
    status = {}
    for queue in tasks.QUEUES:
        beat = tasks.last_heartbeat(queue)
        age = None if beat is None else round(now - beat, 1)
        status[queue] = {
            "ok": age is not None and age <= settings.WORKER_HEARTBEAT_MAX_AGE,
            "heartbeat_age_seconds": age,
            "queued": tasks.queue_depth(queue),
        }
    return status


@never_cache
@require_GET
async def live(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
async def ready(request):
    checks = {
        "database": await sync_to_async(_check_database)(),
        "channel_layer": await _check_channel_layer(),
    }
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


@never_cache
@require_GET
def workers(request):
    clusters = workers_status()
    healthy = all(cluster["ok"] for cluster in clusters.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "runner": settings.TASK_RUNNER, **clusters},
        status=200 if healthy else 503,
    )
