import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.test import TestCase, override_settings

from kernel import tasks
from kernel.tasks import Ticker

ROOT = Path(__file__).resolve().parents[2]


class HealthzTests(TestCase):
    def test_readiness_reports_the_database_and_the_channel_layer(self):
        for path in ("/healthz/ready", "/healthz"):
            response = self.client.get(path)
            self.assertEqual(response.status_code, 200)
            body = response.json()
            self.assertEqual(body["status"], "ok")
            for check in ("database", "channel_layer"):
                self.assertTrue(body[check]["ok"], body)
            self.assertNotIn("worker", body)

    def test_liveness_touches_nothing(self):
        with self.assertNumQueries(0):
            response = self.client.get("/healthz/live")
        self.assertEqual((response.status_code, response.json()), (200, {"status": "ok"}))

    @override_settings(TASK_RUNNER="django_q")
    def test_a_dead_worker_shows_in_workers_but_never_in_readiness(self):
        from django.core.cache import cache

        for queue in tasks.QUEUES:
            cache.delete(f"{tasks.HEARTBEAT_KEY}:{queue}")
        self.assertEqual(self.client.get("/healthz/ready").status_code, 200)
        response = self.client.get("/healthz/workers")
        self.assertEqual(response.status_code, 503)
        self.assertFalse(response.json()["inbound"]["ok"])
        for queue in tasks.QUEUES:
            tasks.heartbeat(queue)
        response = self.client.get("/healthz/workers")
        self.assertEqual(response.status_code, 200, response.json())
        self.assertLess(response.json()["ai"]["heartbeat_age_seconds"], 5)

    def test_it_is_503_when_the_database_is_unreachable(self):
        """A real process whose DATABASE_URL points at a port where nothing listens."""
        script = (
            "import django, json; django.setup();"
            "from django.test import Client;"
            "r = Client().get('/healthz/ready');"
            "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:9/nothing",
            "REDIS_URL": "",
        }
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(result["status"], 503)
        self.assertFalse(result["body"]["database"]["ok"])
        self.assertEqual(result["body"]["status"], "error")


_ticks: list[float] = []


def count_tick():
    _ticks.append(time.monotonic())


class TickerTests(TestCase):
    """Sub-minute periodic work in production: run by the default cluster's ticker, shared by
    every box through a cache claim."""

    def setUp(self):
        _ticks.clear()
        tasks.PERIODIC["tests.config.test_healthz.count_tick"] = 1
        self.addCleanup(tasks.PERIODIC.pop, "tests.config.test_healthz.count_tick")

    def test_two_boxes_run_a_one_second_task_about_once_a_second_in_total(self):
        boxes = [Ticker(max_seconds=59, heartbeat_queues=[], shared=True) for _ in range(2)]
        started = time.monotonic()
        while time.monotonic() - started < 3.2:
            for box in boxes:
                box.tick()
            time.sleep(0.1)
        # Without the shared claim each box would run it every second: 8 times.
        self.assertIn(len(_ticks), (3, 4, 5), _ticks)

    def test_schedules_in_django_q_are_whole_minutes_and_never_sub_minute(self):
        from django_q.models import Schedule

        tasks.ensure_schedules()
        names = set(Schedule.objects.values_list("name", flat=True))
        self.assertNotIn("tests.config.test_healthz.count_tick", names)
        self.assertNotIn("campaigns.tasks.tick", names)  # every 10 s: the ticker's
        schedule = Schedule.objects.get(name="reports.tasks.retention_apply")  # hourly
        self.assertEqual(schedule.minutes, 60)
