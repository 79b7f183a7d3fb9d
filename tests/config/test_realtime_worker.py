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
