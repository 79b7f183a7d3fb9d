"""Thin tasks: take ids, call services."""

from inbox import services
from kernel.tasks import register_periodic


def deliver_message(message_id: int) -> None:
    services.message_deliver(message_id)


def download_media(message_id: int) -> None:
    services.media_download(message_id)


def send_read_receipt(message_id: int) -> None:
    services.read_receipt_send(message_id)


def sweep_interrupted_sends() -> int:
    return services.interrupted_sends_sweep()


register_periodic("inbox.tasks.sweep_interrupted_sends", 300)


def requeue_lost_sends() -> int:
    return services.lost_sends_requeue()


register_periodic("inbox.tasks.requeue_lost_sends", 15)


def teamwork_tick() -> None:
    """Messages sent later and snoozes that end: both stored in the database, so a restarted
    worker picks them up on its first tick."""
    from inbox import teamwork

    teamwork.tick()


def chat_auto_assign(chat_id: int) -> None:
    from inbox import teamwork
    from inbox.models import Chat

    chat = Chat.objects.select_related("contact").filter(pk=chat_id).first()
    if chat is not None:
        teamwork.chat_auto_assign(chat=chat)


register_periodic("inbox.tasks.teamwork_tick", 5)
