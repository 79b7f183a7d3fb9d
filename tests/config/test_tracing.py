"""Request ids: returned in ``X-Request-ID`` (the proxy's own kept when sane), on the request's
one log line, and carried to the tasks the request queues, whose own line names the task, the
request and the organization, in JSON with UTC times."""

import json
import logging
from io import StringIO

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from config.logs import Context, JsonFormatter
from kernel import tasks, tracing
from tests.base import BaseTestCase

SEEN: list[dict] = []


def remember():
    SEEN.append(tracing.fields())


class TracingTests(BaseTestCase):
    def setUp(self):
        SEEN.clear()
        self.stream = StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.addFilter(Context())
        handler.setFormatter(JsonFormatter())
        for name in ("porfin.request", "porfin.task"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            self.addCleanup(logger.removeHandler, handler)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def test_a_request_gets_an_id_and_a_proxys_sane_id_is_kept(self):
        self.login(self.admin)
        answer = self.client.get(reverse("home"))
        self.assertRegex(answer["X-Request-ID"], r"^[0-9a-f]{32}$")
        kept = self.client.get(reverse("home"), headers={"X-Request-ID": "lb-7f3a.2"})
        self.assertEqual(kept["X-Request-ID"], "lb-7f3a.2")
        forged = self.client.get(reverse("home"), headers={"X-Request-ID": "x\n{evil} log"})
        self.assertNotIn("evil", forged["X-Request-ID"])
        lines = [line for line in self.lines() if line["logger"] == "porfin.request"]
        self.assertEqual(len(lines), 3)  # one per request
        self.assertEqual(lines[1]["request_id"], "lb-7f3a.2")
        self.assertEqual(lines[1]["organization_id"], self.org.pk)
        self.assertEqual(lines[1]["user_id"], self.admin.pk)
        self.assertEqual(lines[1]["status"], answer.status_code)
        self.assertTrue(lines[1]["time"].endswith("+00:00"))  # UTC

    def test_a_task_queued_by_a_request_carries_its_id_and_organization(self):
        """The contact import's page queues the import: the worker's line names the request."""
        self.login(self.admin)
        upload = SimpleUploadedFile("c.csv", b"phone\n+5511988887777\n", content_type="text/csv")
        token = self.client.post(reverse("campaign_contact_import"), {"file": upload}).context[
            "token"
        ]
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(
                reverse("campaign_contact_import"),
                {"token": token, "col_0": "phone"},
                headers={"X-Request-ID": "req-42"},
            )
        task_lines = [line for line in self.lines() if line["logger"] == "porfin.task"]
        run = next(line for line in task_lines if line["task"].endswith("contact_import_run"))
        self.assertEqual(run["request_id"], "req-42")
        self.assertEqual(run["organization_id"], self.org.pk)
        self.assertRegex(run["task_id"], r"^[0-9a-f]{32}$")
        self.assertEqual(run["success"], True)
        self.assertEqual(tracing.fields(), {})  # nothing leaks out of the task

    @override_settings(TASK_RUNNER="thread")
    def test_a_worker_thread_logs_the_requests_id_and_organization(self):
        import time

        with self.settings(TASK_RUNNER="thread"):
            token = tracing._request_id.set("req-thread")
            org = tracing._organization_id.set(self.org.pk)
            try:
                tasks.dispatch("tests.config.test_tracing.remember", queue="default")
            finally:
                tracing._organization_id.reset(org)
                tracing._request_id.reset(token)
            deadline = time.monotonic() + 5
            while not SEEN and time.monotonic() < deadline:
                time.sleep(0.01)
        self.assertEqual(SEEN[0]["request_id"], "req-thread")
        self.assertEqual(SEEN[0]["organization_id"], self.org.pk)
        self.assertEqual(tracing.fields(), {})  # nothing leaks into the caller's context

    def test_a_django_q_task_package_carries_the_ids_to_the_worker(self):
        package = {"id": "abc123", "name": "inbox.tasks.x", "func": "x", "args": ()}
        token = tracing._request_id.set("req-q")
        try:
            tracing._on_enqueue("django_q", task=package)
        finally:
            tracing._request_id.reset(token)
        self.assertEqual(package["porfin_context"], {"request_id": "req-q"})
        tracing._on_execute("django_q", func=None, task=package)
        self.assertEqual(tracing.fields(), {"request_id": "req-q", "task_id": "abc123"})
        tracing._on_executed("django_q", func=None, task={**package, "success": False})
        self.assertEqual(tracing.fields(), {})
        line = self.lines()[-1]
        self.assertEqual((line["task_id"], line["success"]), ("abc123", False))
