"""Domain events of campaigns, for whoever subscribes (outgoing webhooks, see
``campaigns/outgoing_events.py``). Sent after the change commits (``inbox.signals.send_on_commit``);
receivers must be quick and idempotent: enqueue work, don't do it inline.
"""

from django.dispatch import Signal

from inbox.signals import send_on_commit  # noqa: F401  (senders use it from here)

# campaign_id=int: a run finished sending (every recipient sent, failed or skipped). One-off
# campaigns are then "completed"; recurring ones "scheduled" for their next run.
campaign_completed = Signal()
