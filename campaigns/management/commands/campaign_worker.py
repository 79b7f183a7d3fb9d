"""Run the campaign engine in this process: start due runs and dispatch running campaigns, one
thread per campaign. Production uses the periodic task (``campaigns.tasks.tick``); this command
serves dedicated workers, the killed-worker test and the benchmark."""

import threading
import time
from dataclasses import replace

from django.core.management.base import BaseCommand
from django.db import connection

from campaigns import dispatch
from campaigns.models import Campaign


class Command(BaseCommand):
    help = "Dispatch campaigns from this process until interrupted (or until done)."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", type=int, action="append", default=[])
        parser.add_argument("--until-done", action="store_true")
        parser.add_argument(
            "--lease-seconds", type=float, help="Default: CAMPAIGN_LEASE_SECONDS (15)."
        )
        parser.add_argument(
            "--reconcile-seconds",
            type=float,
            help="Both reconcile windows (default: CAMPAIGN_RECONCILE_SECONDS and "
            "CAMPAIGN_CLAIM_RECONCILE_SECONDS).",
        )
        parser.add_argument("--poll", type=float, default=0.5)

    def handle(self, *args, **options):
        settings = replace(dispatch.Options.from_settings(), slice_seconds=3600, idle_sleep=0.1)
        if options["lease_seconds"] is not None:
            settings.lease_seconds = options["lease_seconds"]
        if options["reconcile_seconds"] is not None:
            settings.reconcile_seconds = options["reconcile_seconds"]
            settings.claim_reconcile_seconds = options["reconcile_seconds"]
        threads: dict[int, threading.Thread] = {}
        selected = options["campaign"]
        while True:
            dispatch.start_due()
            campaigns = Campaign.objects.all()
            if selected:
                campaigns = campaigns.filter(pk__in=selected)
            running = list(
                campaigns.filter(status=Campaign.Status.RUNNING).values_list("pk", flat=True)
            )
            for campaign_id in running:
                thread = threads.get(campaign_id)
                if thread is None or not thread.is_alive():
                    threads[campaign_id] = thread = threading.Thread(
                        target=self.dispatch, args=(campaign_id, settings), daemon=True
                    )
                    thread.start()
            alive = any(t.is_alive() for t in threads.values())
            if options["until_done"] and not running and not alive:
                break
            time.sleep(options["poll"])
        self.stdout.write("campaigns done")

    def dispatch(self, campaign_id, settings):
        try:
            outcome = dispatch.Dispatcher(campaign_id, settings).run()
            if outcome != "busy":
                self.stdout.write(f"campaign {campaign_id}: {outcome}")
        finally:
            connection.close()
