"""Publish live events to websocket groups from any thread, without an event loop per call.

In a web process the events are sent on the server's own loop (so the in-memory channel layer of
the embedded default reaches the browsers connected to this process). In a worker process, one
daemon thread per process owns a loop that keeps the Redis connections warm.
"""

import asyncio
import concurrent.futures
import json
import logging
import threading

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def register_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The ASGI application calls this with the loop it serves on (one per server process)."""
    global _loop
    _loop = loop


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="realtime", daemon=True).start()
            _loop = loop
        return _loop


_in_flight: set[concurrent.futures.Future] = set()


def _log_failure(future) -> None:
    _in_flight.discard(future)
    if not future.cancelled() and future.exception() is not None:
        logger.warning("Live event not delivered: %r", future.exception())


def flush(timeout: float = 2.0) -> None:
    """Wait (up to ``timeout``) until the events published from worker threads have reached
    the channel layer. A django-q2 worker calls it after every task: it may exit right after
    one (``recycle``), and its publishing thread would die with events still unsent."""
    pending = list(_in_flight)
    if pending:
        concurrent.futures.wait(pending, timeout=timeout)


def publish(group: str, event: dict) -> None:
    """Send ``event`` (a dict with a ``type`` naming the consumer handler) to ``group``.

    A ``live.event``'s data is serialized here, once, as ``text``: every socket of the group
    then sends the same string instead of encoding the same JSON again."""
    layer = get_channel_layer()
    if layer is None:
        return
    if "data" in event and "text" not in event:
        event = {**event, "text": json.dumps(event["data"], separators=(",", ":"))}
    loop = _publisher_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(layer.group_send(group, event)).add_done_callback(_log_failure)
    else:
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, event), loop)
        _in_flight.add(future)
        future.add_done_callback(_log_failure)


def publish_on_commit(group: str, event: dict) -> None:
    transaction.on_commit(lambda: publish(group, event))
