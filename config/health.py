"""``GET /healthz``: database, channel layer and task-worker heartbeat, as JSON (200 or 503)."""

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

from config import tasks


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


def _check_worker() -> dict:
    if settings.TASK_RUNNER == "inline":
        return {"ok": True, "runner": "inline"}
    beat = tasks.last_heartbeat()
    if beat is None:
        return {"ok": False, "runner": settings.TASK_RUNNER, "error": "no heartbeat yet"}
    age = round(time.time() - beat, 1)
    return {
        "ok": age <= settings.WORKER_HEARTBEAT_MAX_AGE,
        "runner": settings.TASK_RUNNER,
        "heartbeat_age_seconds": age,
    }


@never_cache
@require_GET
async def healthz(request):
    checks = {
        "database": await sync_to_async(_check_database)(),
        "channel_layer": await _check_channel_layer(),
        "worker": await sync_to_async(_check_worker)(),
    }
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
