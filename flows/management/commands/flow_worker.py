"""``manage.py flow_worker``: take due flow steps in this process (the periodic sweep's work,
in a loop). Deployments normally rely on the qcluster schedule (``flows.tasks.sweep``); this is
for a dedicated worker and for the kill -9 test, which runs two of them one after the other."""

import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from flows import runtime
from flows.models import FlowRun
from inbox.models import Message
from inbox.services import send as inbox_send


class Command(BaseCommand):
    help = "Resume due flow runs in a loop (expired leases, finished waits, timeouts)."

    def add_arguments(self, parser):
        parser.add_argument("--poll", type=float, default=1.0, help="seconds between sweeps")
        parser.add_argument("--lease-seconds", type=float, default=60, help="a run's lease")
        parser.add_argument(
            "--lost-send-seconds", type=float, default=120, help="re-queue lost sends after"
        )
        parser.add_argument("--until-idle", action="store_true", help="exit when nothing runs")

    def handle(self, *args, poll, lease_seconds, lost_send_seconds, until_idle, **options):
        settings.TASK_RUNNER = "inline"  # steps and their sends run here, one after the other
        runtime.LEASE = timedelta(seconds=lease_seconds)
        inbox_send.LOST_SEND_AFTER = timedelta(seconds=lost_send_seconds)
        while True:
            runtime.sweep()
            inbox_send.lost_sends_requeue()  # the inbox's periodic sweep, in this loop
            if until_idle and not self._busy():
                return
            time.sleep(poll)

    def _busy(self) -> bool:
        return (
            FlowRun.objects.filter(status=FlowRun.Status.RUNNING).exists()
            or Message.objects.filter(
                status=Message.Status.PENDING, error_title="", author_ref__startswith="flow:"
            ).exists()
        )
