"""A django-q2 worker may exit right after a task (``recycle``): the live events that task
published still reach the browsers (real Redis, real worker process)."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer

from kernel.pubsub import PubSubLayer
from tests.inbox.test_multiprocess_fanout import REDIS_URL, redis_available

ROOT = Path(__file__).resolve().parents[2]
GROUP = "test-worker-exit"
WORKER = """
import os
import django

django.setup()
from django_q.signals import post_execute_in_worker

from kernel import realtime

for n in range(20):
    event = {"type": "live.event", "data": {"type": "message.new", "n": n}}
    realtime.publish(os.environ["GROUP"], event)
if os.environ["TASK_ENDS"] == "1":  # what the django-q2 worker sends after each task
    post_execute_in_worker.send(sender="django_q", func=None, task={})
os._exit(0)  # as a recycled worker leaves: no waiting for its threads
"""


def events_seen_after_a_worker_exits(task_ends: bool) -> list[int]:
    layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix="porfin")

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "REDIS_URL": REDIS_URL,
            "TASK_RUNNER": "django_q",
            "TASK_ENDS": "1" if task_ends else "0",
            "GROUP": GROUP,
        }
        worker = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", WORKER], cwd=ROOT, env=env, check=True
        )
        assert worker.returncode == 0
        seen = []
        try:
            while True:
                message = await asyncio.wait_for(layer.receive(channel), 2)
                # Events published together travel as one message (realtime._coalesced).
                texts = message.get("texts") or [message["text"]]
                seen += [json.loads(text)["n"] for text in texts]
        except TimeoutError:
            pass
        await layer.group_discard(GROUP, channel)
        await layer.flush()
        return seen

    return asyncio.run(scenario())


def test_a_workers_last_events_go_out_before_it_exits():
    if not redis_available():
        pytest.skip("needs a Redis server for channels-redis")
    assert events_seen_after_a_worker_exits(task_ends=True) == list(range(20))


def test_a_batch_of_group_sends_reaches_each_group_in_order():
    """``PubSubLayer.group_send_many`` (the production layer): one pipeline, each group's
    messages in the order given, each group only its own."""
    if not redis_available():
        pytest.skip("needs a Redis server for channels-redis")
    layer = PubSubLayer(hosts=[REDIS_URL], prefix="porfin-test")

    def event(text):
        return {"type": "live.event", "text": text}

    async def scenario():
        org, user = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("org-1", org)
        await layer.group_add("user-7", user)
        await layer.group_send_many(
            [("org-1", event("1")), ("user-7", event("a")), ("org-1", event("2"))]
        )
        seen = {org: [], user: []}
        for channel, count in ((org, 2), (user, 1)):
            for _ in range(count):
                message = await asyncio.wait_for(layer.receive(channel), 2)
                seen[channel].append(message["text"])
        with pytest.raises(TimeoutError):  # nothing more, on either
            await asyncio.wait_for(layer.receive(user), 0.3)
        await layer.flush()
        return seen[org], seen[user]

    assert asyncio.run(scenario()) == (["1", "2"], ["a"])


@pytest.mark.parametrize("shards", [1, 2])
def test_events_published_from_a_thread_reach_subscribers_on_the_loop(shards):
    """``PubSubLayer.publish_many_now`` (an API call's thread, after its answer): what
    channels-redis' own subscribers receive, each group its own, in order, over one or several
    shards (the channel layer's group naming and shard hash)."""
    if not redis_available():
        pytest.skip("needs a Redis server for channels-redis")
    layer = PubSubLayer(hosts=[REDIS_URL] * shards, prefix="porfin-test")
    assert layer.publishes_now

    def event(text):
        return {"type": "live.event", "text": text}

    async def scenario():
        channels = {}
        for group in ("org-1", "user-7", "user-8"):
            channels[group] = await layer.new_channel()
            await layer.group_add(group, channels[group])
        sends = [
            ("org-1", event("1")),
            ("user-7", event("a")),
            ("org-1", event("2")),
            ("user-8", event("x")),
        ]
        await asyncio.to_thread(layer.publish_many_now, sends)
        seen = {}
        for group, count in (("org-1", 2), ("user-7", 1), ("user-8", 1)):
            seen[group] = [
                (await asyncio.wait_for(layer.receive(channels[group]), 2))["text"]
                for _ in range(count)
            ]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channels["user-7"]), 0.3)
        await layer.flush()
        return seen

    assert asyncio.run(scenario()) == {"org-1": ["1", "2"], "user-7": ["a"], "user-8": ["x"]}


def test_a_layer_that_cannot_publish_from_a_thread_keeps_the_event_loop_path(monkeypatch):
    """Within an API call (``realtime.held_until_answered``), a layer without
    ``publish_many_now`` (channels-redis' own, which answers unknown names through the event
    loop's layer) is not held: its event goes by the publisher loop, and arrives."""
    if not redis_available():
        pytest.skip("needs a Redis server for channels-redis")
    from kernel import realtime

    layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix="porfin-test-plain")
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: layer)

    def publish_in_a_request():
        with realtime.held_until_answered() as held:
            realtime.publish("org-9", {"type": "live.event", "text": "hello"})
        return held

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add("org-9", channel)
        held = await asyncio.to_thread(publish_in_a_request)
        message = await asyncio.wait_for(layer.receive(channel), 5)
        await layer.flush()
        return held, message["text"]

    assert asyncio.run(scenario()) == ([], "hello")
