"""Thin tasks: take ids, call services."""

from inbox import services


def deliver_message(message_id: int) -> None:
    services.message_deliver(message_id)


def download_media(message_id: int) -> None:
    services.media_download(message_id)


def send_read_receipt(message_id: int) -> None:
    services.read_receipt_send(message_id)
