"""Customer files for media tests: a real sandbox holds the customer's file, the real webhook
parser and download task store it, and a real S3-compatible server (moto) can be the storage."""

import itertools
import time
from dataclasses import dataclass

import boto3
import requests
from django.test import override_settings

from inbox import services
from inbox.models import Media
from integrations.providers import provider_for
from integrations.whatsapp import payloads
from tests.servers import free_port

BUCKET = "porfin-media-test"
_wamids = itertools.count(1)


class MotoS3:
    """moto's S3 server on a free 127.0.0.1 port (its own thread), with one bucket."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> "MotoS3":
        self.server.start()
        self.client().create_bucket(Bucket=BUCKET)
        return self

    def stop(self):
        self.server.stop()

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]

    def env(self) -> dict[str, str]:
        """The production environment variables that point Porfin at this server."""
        return {
            "MEDIA_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def storage_settings(self):
        """The STORAGES that ``MEDIA_STORAGE=s3`` and ``env()`` give (config/settings.py)."""
        from django.conf import settings

        options = {
            "bucket_name": BUCKET,
            "access_key": "testing",
            "secret_key": "testing",
            "endpoint_url": self.endpoint,
            "region_name": "us-east-1",
            "addressing_style": "path",
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": False,
        }
        storages = {
            **settings.STORAGES,
            "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
        }
        return override_settings(STORAGES=storages)


def customer_sends(case, chat, kind: str, data: bytes, mime_type: str, filename: str = "") -> Media:
    """The customer's phone uploads ``data`` to WhatsApp (the sandbox) and sends it; the webhook
    is parsed and stored, and the download task stores the file (inline tasks)."""
    media_id = provider_for(chat.number).upload_media(
        data=data, mime_type=mime_type, filename=filename or "file"
    )
    raw = payloads.build_inbound_message(
        wamid=f"wamid.media.{next(_wamids)}.{time.monotonic_ns()}",
        from_wa_id=chat.contact.wa_id,
        message_type=kind,
        content=payloads.build_media(
            media_id=media_id, mime_type=mime_type, sha256="", filename=filename
        ),
        timestamp=str(int(time.time())),
    )
    body = payloads.build_webhook(
        "waba",
        [
            payloads.build_messages_change(
                phone_number_id=chat.number.phone_number_id,
                display_phone_number="+55 11 4000-0000",
                contacts=[payloads.build_contact(wa_id=chat.contact.wa_id, profile_name="Cli")],
                messages=[raw],
            )
        ],
    )
    (event,) = payloads.parse_webhook(body)
    with case.captureOnCommitCallbacks(execute=True):
        message = services.message_receive(number=chat.number, inbound=event)
    return Media.objects.get(message=message)


@dataclass
class Served:
    """What the browser finally got for a media URL (after a redirect to signed storage)."""

    status: int
    headers: object  # case-insensitive mapping
    body: bytes
    first: object  # the app's own response


def fetch(client, url: str) -> Served:
    response = client.get(url)
    if response.status_code == 302 and response["Location"].startswith("http"):
        signed = requests.get(response["Location"], timeout=10)
        return Served(signed.status_code, signed.headers, signed.content, response)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return Served(response.status_code, response.headers, body, response)
