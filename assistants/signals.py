"""Domain events of the assistants, for whoever subscribes (outgoing webhooks, see
``assistants/outgoing_events.py``). Sent after the change commits (``inbox.signals.send_on_commit``);
receivers must be quick and idempotent: enqueue work, don't do it inline.
"""

from django.dispatch import Signal

from inbox.signals import send_on_commit  # noqa: F401  (senders use it from here)

# chat=Chat, assistant=Assistant, reason=str: the assistant handed the chat over to the team.
handoff = Signal()
# analysis=ConversationAnalysis: a conversation analysis was stored.
analysis_completed = Signal()
