from django.db import transaction
from django.test import TestCase, override_settings

from kernel import tasks

CALLS = []


def record(value):
    CALLS.append(value)


class EnqueueTests(TestCase):
    def setUp(self):
        CALLS.clear()

    def test_it_runs_only_after_commit(self):
        with self.captureOnCommitCallbacks(execute=True), transaction.atomic():
            tasks.enqueue("tests.config.test_tasks.record", 1)
            self.assertEqual(CALLS, [])
        self.assertEqual(CALLS, [1])

    def test_a_rolled_back_transaction_runs_nothing(self):
        with self.captureOnCommitCallbacks(execute=True):
            try:
                with transaction.atomic():
                    tasks.enqueue("tests.config.test_tasks.record", 2)
                    raise RuntimeError
            except RuntimeError:
                pass
        self.assertEqual(CALLS, [])

    def test_unknown_queue_is_refused(self):
        with self.assertRaises(ValueError):
            tasks.enqueue("tests.config.test_tasks.record", 3, queue="nope")

    @override_settings(TASK_RUNNER="thread")
    def test_the_thread_runner_runs_in_the_background(self):
        import time

        tasks.dispatch("tests.config.test_tasks.record", 4)
        deadline = time.monotonic() + 5
        while not CALLS and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(CALLS, [4])
