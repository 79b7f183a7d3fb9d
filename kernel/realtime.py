"""Publish live events to websocket groups from any thread, without an event loop per call.

In a web process the events are sent on the server's own loop (so the in-memory channel layer of
the embedded default reaches the browsers connected to this process). In a worker process, one
daemon thread per process owns a loop that keeps the Redis connections warm.
"""

import asyncio
import collections
import json
import logging
import threading
from contextlib import AbstractContextManager
from contextvars import ContextVar

from channels.layers import get_channel_layer
from django.db import transaction

from kernel import tracing

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


# Events published and not yet handed to the channel layer, oldest first. One sender task on
# the publisher loop takes all that queued up while it was sending (the events of a batch's
# commit arrive together) and sends each group's live events as one message.
_queue: collections.deque[tuple[object, str, dict]] = collections.deque()
_sender: asyncio.AbstractEventLoop | None = None  # the loop a sender is scheduled on (_lock)
_idle = threading.Event()
_idle.set()


def flush(timeout: float = 2.0) -> None:
    """Wait (up to ``timeout``) until the events published from worker threads have reached
    the channel layer. A django-q2 worker calls it after every task: it may exit right after
    one (``recycle``), and its publishing thread would die with events still unsent."""
    _idle.wait(timeout)


def publish(group: str, event: dict) -> None:
    """Send ``event`` (a dict with a ``type`` naming the consumer handler) to ``group``.

    A ``live.event``'s data is serialized here, once, as ``text``: every socket of the group
    then sends the same string instead of encoding the same JSON again. Live events published
    together to one group travel together (``_coalesced``)."""
    global _sender
    layer = get_channel_layer()
    if layer is None:
        return
    if "data" in event and "text" not in event:
        event = {**event, "text": json.dumps(event["data"], separators=(",", ":"))}
    held = _held.get()
    # Asked of the class first: channels-redis' pub/sub layer answers other names through its
    # event loop's layer, and this thread may have none.
    if held is not None and hasattr(type(layer), "publish_many_now") and layer.publishes_now:
        held.append((layer, group, event))
        return
    loop = _publisher_loop()
    with _lock:
        _queue.append((layer, group, event))
        if _sender is loop and not loop.is_closed():
            return  # the sender on its way takes this one too
        _sender = loop
        _idle.clear()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(_send_queued(loop))
    else:
        loop.call_soon_threadsafe(lambda: loop.create_task(_send_queued(loop)))


async def _send_queued(loop: asyncio.AbstractEventLoop) -> None:
    global _sender
    while True:
        with _lock:
            items = list(_queue)
            _queue.clear()
            if not items:
                if _sender is loop:
                    _sender = None
                    _idle.set()
                return
        by_layer: dict[int, tuple[object, list[tuple[str, dict]]]] = {}
        for layer, group, message in _coalesced(items):
            by_layer.setdefault(id(layer), (layer, []))[1].append((group, message))
        await asyncio.gather(*(_send(layer, sends) for layer, sends in by_layer.values()))


async def _send(layer, sends: list[tuple[str, dict]]) -> None:
    """A layer's (group, message) sends: in one call where it has ``group_send_many``
    (``kernel.pubsub``: one round trip per Redis shard); otherwise each group's in order, the
    groups at once."""
    if hasattr(layer, "group_send_many"):
        try:
            await layer.group_send_many(sends)
        except Exception as error:  # the channel layer is down: the pages resync by seq
            logger.warning("Live events not delivered: %r", error)
        return
    by_group: dict[str, list[dict]] = {}
    for group, message in sends:
        by_group.setdefault(group, []).append(message)
    await asyncio.gather(*(_send_in_order(layer, g, m) for g, m in by_group.items()))


async def _send_in_order(layer, group: str, messages: list[dict]) -> None:
    for message in messages:
        try:
            await layer.group_send(group, message)
        except Exception as error:  # the channel layer is down: the pages resync by seq
            logger.warning("Live event not delivered: %r", error)


def _coalesced(items: list[tuple[object, str, dict]]) -> list[tuple[object, str, dict]]:
    """``items`` with each group's consecutive live events merged into one message,
    ``{"type": "live.event", "texts": [...]}``, in order (the socket sends them as one frame,
    as it does a burst): a batch of 200 customer messages is one channel-layer send per group,
    not 200. Any other message keeps its place in its group's order; a lone event goes as it
    was published."""
    merged: list[tuple[object, str, list[dict]]] = []
    runs: dict[tuple[int, str], list[dict]] = {}  # group → its current run of live events
    for layer, group, message in items:
        key = (id(layer), group)
        if message.get("type") == "live.event" and "text" in message:
            if key in runs:
                runs[key].append(message)
                continue
            runs[key] = [message]
            merged.append((layer, group, runs[key]))
        else:
            runs.pop(key, None)
            merged.append((layer, group, [message]))
    return [
        (layer, group, run[0] if len(run) == 1 else _merged(run)) for layer, group, run in merged
    ]


def _merged(run: list[dict]) -> dict:
    return {"type": "live.event", "texts": [message["text"] for message in run]}


# Live events a request's commits published while its answer was being made (a list while such
# a request runs in this context; see ``held_until_answered``).
_held: ContextVar[list | None] = ContextVar("realtime_held", default=None)


def held_until_answered() -> AbstractContextManager[list]:
    """Within: events published to a layer that can publish from this thread
    (``kernel.pubsub.PubSubLayer.publishes_now``) wait in the yielded list, and the caller
    hands them to ``publish_held`` once the request's answer is on its way
    (``config.asgi.ApiKeyDjangoHandler``, with the tasks the request queued). Sent from the
    request's thread, a send's live events cost one round trip there instead of a hand-over to
    the event loop and an asyncio Redis pipeline on it, together about a fifteenth of the
    web process's CPU under the API mix."""
    return tracing.collecting(_held)


def publish_held(held: list) -> None:
    """Publish what ``held_until_answered`` held, each group's in order and coalesced as the
    loop's sender does, in one round trip per Redis shard."""
    by_layer: dict[int, tuple[object, list[tuple[str, dict]]]] = {}
    for layer, group, message in _coalesced(held):
        by_layer.setdefault(id(layer), (layer, []))[1].append((group, message))
    for layer, sends in by_layer.values():
        try:
            layer.publish_many_now(sends)
        except Exception as error:  # the channel layer is down: the pages resync by seq
            logger.warning("Live events not delivered: %r", error)


def publish_on_commit(group: str, event: dict) -> None:
    transaction.on_commit(lambda: publish(group, event))
