"""With REDIS_URL, a message received by one web process reaches a browser socket connected to
another web process (channels-redis). Two real uvicorn processes, a real signed webhook."""

import asyncio
import json
import os
import time

import pytest
import redis
import websockets
from django.conf import settings
from django.test import Client

from accounts.models import Membership, Organization, Role, User
from integrations.models import WhatsAppNumber
from integrations.whatsapp import payloads, signature
from tests.servers import ServerProcess

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

# Without REDIS_URL (the embedded-default pass), a Redis database no bench claims: db 14 is
# webhook_ingest's and flows' default, and this test's keys there made those benches refuse it.
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/11"


def redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture
def two_servers():
    if not redis_available():
        pytest.skip("needs a Redis server for channels-redis")
    env = {"REDIS_URL": REDIS_URL, "TASK_RUNNER": "thread"}
    servers = [ServerProcess(env=env).start(), ServerProcess(env=env).start()]
    yield servers
    for server in servers:
        server.stop()


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_a_webhook_on_one_process_reaches_a_socket_on_another(two_servers):
    receiving, watching = two_servers
    org = Organization.objects.create(name="Multi", slug="multi")
    operator = User.objects.create_user(email="op@multi.test", password="x")
    Membership.objects.create(user=operator, organization=org, role=Role.OPERATOR)
    number = WhatsAppNumber.objects.create(
        organization=org,
        name="Main",
        display_phone_number="5511400000",
        phone_number_id="9090",
        waba_id="1",
        access_token="t",
        app_secret="multi-secret",
    )
    body = payloads.encode_webhook(
        payloads.build_webhook(
            "1",
            [
                payloads.build_messages_change(
                    phone_number_id="9090",
                    display_phone_number="5511400000",
                    contacts=[payloads.build_contact(wa_id="5511955554444", profile_name="Rita")],
                    messages=[
                        payloads.build_inbound_message(
                            from_wa_id="5511955554444",
                            wamid="wamid.multi-1",
                            message_type="text",
                            content=payloads.build_text("Chegou pelo outro processo?"),
                        )
                    ],
                )
            ],
        )
    )
    cookie = session_cookie(operator)

    async def scenario():
        url = watching.url.replace("http", "ws") + "/ws/live/"
        async with websockets.connect(
            url, additional_headers={"Cookie": cookie, "Origin": watching.url}
        ) as socket:
            hello = json.loads(await asyncio.wait_for(socket.recv(), 5))
            assert hello["type"] == "hello"
            import requests

            started = time.monotonic()
            response = await asyncio.to_thread(
                requests.post,
                f"{receiving.url}/webhooks/whatsapp/{number.webhook_key}/",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": signature.sign(body, "multi-secret"),
                },
                timeout=5,
            )
            assert response.status_code == 200
            while True:
                event = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if event["type"] == "message.new":
                    return event, time.monotonic() - started

    event, elapsed = asyncio.run(scenario())
    chat = number.chats.get()
    assert event["chat"] == str(chat.code)
    assert chat.messages.get().text == "Chegou pelo outro processo?"
    assert elapsed < 10
