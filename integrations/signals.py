"""Domain events of the WhatsApp channel. ``integrations`` sends them; the apps above subscribe
(``inbox`` stores messages and statuses; assistants, campaigns and outgoing webhooks follow
``inbox``'s own events), so nothing here imports those apps.

Receivers run inside the processing transaction of the webhook event: an exception rolls the
event back and leaves it for the retry sweep, so receivers must be idempotent.
"""

from django.dispatch import Signal

# sender=WhatsAppNumber, number=..., message=payloads.InboundMessage
message_received = Signal()
# sender=WhatsAppNumber, number=..., messages=[payloads.InboundMessage, ...] in the order received:
# a whole batch's messages of one number at once, so a receiver stores them in a few statements.
# Sent in a savepoint; if a receiver fails, each message is sent again alone (message_received).
messages_batch_received = Signal()
# sender=WhatsAppNumber, number=..., statuses=[payloads.StatusUpdate, ...] in the order received
# (a whole batch of deliveries at once: statuses are the bulk of the traffic)
statuses_received = Signal()
# sender=WhatsAppNumber, number=..., wa_ids=set of customers writing in, wamids=set of messages
# whose status changes: sent once per number before a batch of deliveries is processed, inside
# its transaction, so receivers can lock what the batch will touch in a fixed order.
batch_starting = Signal()
# sender=WhatsAppNumber, number=..., message=events.OwnMessage: the business sent a message from
# its phone (WhatsApp Web numbers); recorded as outbound, once per wamid.
message_echoed = Signal()
