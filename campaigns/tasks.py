"""Thin tasks: ids in, services out. Safe to run twice (claims and leases in the database)."""

from django.conf import settings

from campaigns import dispatch
from config import tasks


def tick():
    return dispatch.tick()


def start_campaign(campaign_id: int):
    if dispatch.run_start(campaign_id):
        return dispatch_campaign(campaign_id)
    return "not due"


def dispatch_campaign(campaign_id: int):
    """Dispatch for one time slice (shorter than the queue's task timeout), then hand over to a
    fresh task so a long campaign never runs into the timeout nor waits for the next tick."""
    outcome = dispatch.campaign_dispatch(campaign_id)
    if outcome == "slice" and settings.TASK_RUNNER != "inline":
        tasks.dispatch("campaigns.tasks.dispatch_campaign", campaign_id, queue="bulk")
    return outcome
