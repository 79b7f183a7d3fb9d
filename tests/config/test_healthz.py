import json
import os
import subprocess
import sys
from pathlib import Path

from django.test import TestCase, override_settings

from config import tasks

ROOT = Path(__file__).resolve().parents[2]


class HealthzTests(TestCase):
    def test_it_reports_every_check(self):
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["status"], "ok")
        for check in ("database", "channel_layer", "worker"):
            self.assertTrue(body[check]["ok"], body)

    @override_settings(TASK_RUNNER="django_q")
    def test_it_is_503_without_a_worker_heartbeat(self):
        from django.core.cache import cache

        cache.delete(tasks.HEARTBEAT_KEY)
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertFalse(response.json()["worker"]["ok"])
        tasks.heartbeat()
        self.assertEqual(self.client.get("/healthz").status_code, 200)

    def test_it_is_503_when_the_database_is_unreachable(self):
        """A real process whose DATABASE_URL points at a port where nothing listens."""
        script = (
            "import django, json; django.setup();"
            "from django.test import Client;"
            "r = Client().get('/healthz');"
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
