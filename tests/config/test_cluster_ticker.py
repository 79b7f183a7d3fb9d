"""Production's worker clusters (real ``qcluster`` processes on real Redis): each writes its
own heartbeat, and the default cluster runs the sub-minute periodic work."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests import servers
from tests.inbox.test_multiprocess_fanout import REDIS_URL, redis_available

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.multiprocess
def test_each_cluster_beats_and_readiness_ignores_workers(transactional_db):
    from django.conf import settings
    from django.core.cache import cache

    if not (redis_available() and settings.REDIS_URL == REDIS_URL):
        pytest.skip("needs the workers' Redis as this process's cache (the PostgreSQL + Redis run)")

    from kernel import tasks

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": servers.test_database_url(),
        "REDIS_URL": REDIS_URL,
        "TASK_RUNNER": "django_q",
        "Q_CLUSTER_NAME": "porfin-inbound",
    }
    for queue in tasks.QUEUES:
        cache.delete(f"{tasks.HEARTBEAT_KEY}:{queue}")
    server = servers.ServerProcess(env={"REDIS_URL": REDIS_URL, "TASK_RUNNER": "django_q"}).start()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import requests

        # No worker has beaten yet: the web process is still ready; the live probe never asks.
        assert requests.get(f"{server.url}/healthz/ready", timeout=10).status_code == 200
        assert requests.get(f"{server.url}/healthz/live", timeout=10).json() == {"status": "ok"}
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and tasks.last_heartbeat("inbound") is None:
            time.sleep(0.5)
        assert tasks.last_heartbeat("inbound") is not None, "the inbound cluster never beat"
        workers = requests.get(f"{server.url}/healthz/workers", timeout=10).json()
        assert workers["inbound"]["ok"] is True
        assert workers["bulk"]["ok"] is False  # no bulk cluster runs here
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.stop()
        redis.Redis.from_url(REDIS_URL).delete("django_q:porfin-inbound:q")
