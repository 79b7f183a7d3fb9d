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
