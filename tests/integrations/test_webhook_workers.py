"""Real worker processes on the shared test database: a worker killed in the middle of an event
loses nothing and the sweep reprocesses it without duplicates; workers racing on the same event
(or on duplicate deliveries of it) store one message."""

import os
import signal
import subprocess
import sys
import time

import pytest

from accounts.models import Organization
from inbox.models import Message
from integrations import services
from integrations.models import WebhookEvent, WhatsAppNumber
from tests import servers
from tests.integrations.conftest import inbound_body, status_body
from tests.servers import ROOT

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

WORKER = """
import os, sys, time
from integrations import services, signals

def stall(sender, **kwargs):
    print("STALLED", flush=True)
    time.sleep(float(os.environ["STALL_SECONDS"]))

# After inbox's receiver stored the message (a batch's messages are stored at once).
signals.messages_batch_received.connect(stall, weak=False)
signals.message_received.connect(stall, weak=False)
services.webhook_event_process(int(os.environ["EVENT_ID"]))
print("DONE", flush=True)
"""


def start_worker(event_id: int, stall_seconds: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": servers.test_database_url(),
        "TASK_RUNNER": "inline",
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        "EVENT_ID": str(event_id),
        "STALL_SECONDS": str(stall_seconds),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", WORKER],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(process: subprocess.Popen, marker: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if line.strip() == marker:
            return
    process.kill()
    raise AssertionError(f"worker never printed {marker}: {''.join(lines)[-2000:]}")


@pytest.fixture
def number():
    organization = Organization.objects.create(name="Clínica Worker", slug="clinica-worker")
    return WhatsAppNumber.objects.create(
        organization=organization,
        name="Main",
        display_phone_number="+55 11 4000-0000",
        phone_number_id="777",
        waba_id="1000",
        access_token="token-worker",
        app_secret="secret-worker",
    )


def stored_event(number, wamid: str) -> WebhookEvent:
    return WebhookEvent.objects.create(
        number=number,
        organization_id=number.organization_id,
        body=inbound_body(number, wamid=wamid),
        headers={},
    )


def test_a_worker_killed_mid_event_loses_nothing_and_the_sweep_adds_no_duplicate(number):
    event = stored_event(number, "wamid.killed")
    worker = start_worker(event.pk, stall_seconds=60)
    try:
        wait_for_line(worker, "STALLED")
        # The worker has stored the message inside its transaction, then hangs: kill it.
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.stdout.close()
    event.refresh_from_db()
    assert event.processed_at is None
    assert event.attempts == 1
    assert not Message.objects.filter(wamid="wamid.killed").exists()

    assert services.webhook_events_sweep(older_than_seconds=0) == 1
    event.refresh_from_db()
    assert event.processed_at is not None
    assert event.attempts == 2
    assert Message.objects.filter(wamid="wamid.killed").count() == 1

    # Reprocessing again (a late duplicate task) changes nothing.
    WebhookEvent.objects.filter(pk=event.pk).update(processed_at=None)
    services.webhook_event_process(event.pk)
    assert Message.objects.filter(wamid="wamid.killed").count() == 1
    assert Message.objects.get(wamid="wamid.killed").chat.unread_count == 1


def test_workers_racing_on_one_event_and_its_duplicate_store_one_message(number):
    event = stored_event(number, "wamid.race")
    duplicate = stored_event(number, "wamid.race")  # Meta delivered it twice
    workers = [
        start_worker(event.pk, 0.5),
        start_worker(event.pk, 0.5),
        start_worker(duplicate.pk, 0.5),
    ]
    try:
        for worker in workers:
            output, _ = worker.communicate(timeout=60)
            assert worker.returncode == 0, output
            assert "DONE" in output
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert Message.objects.filter(wamid="wamid.race").count() == 1
    assert Message.objects.get(wamid="wamid.race").chat.unread_count == 1
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0
    assert set(WebhookEvent.objects.values_list("error", flat=True)) == {""}


def test_batches_sharing_chats_wait_for_each_other_instead_of_deadlocking(number):
    """Two workers' batches touch the same two chats in opposite orders (a customer writes in
    one, a status arrives for the other). Each pauses after its messages, before its statuses,
    so that without a fixed lock order they would hold one chat each and deadlock."""
    import contextlib
    import threading

    from django.db import connection

    from inbox.models import Chat, Contact
    from integrations import signals

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    chats = {}
    for wa_id in ("5511900000001", "5511900000002"):
        contact = Contact.objects.create(
            organization=number.organization, wa_id=wa_id, phone=f"+{wa_id}"
        )
        chat = Chat.objects.create(organization=number.organization, contact=contact, number=number)
        Message.objects.create(
            organization=number.organization,
            chat=chat,
            number=number,
            direction=Message.Direction.OUTBOUND,
            type=Message.Type.TEXT,
            text="Lembrete",
            wamid=f"wamid.out.{wa_id}",
            status=Message.Status.SENT,
        )
        chats[wa_id] = chat
    now = int(time.time())

    def event(body):
        return WebhookEvent.objects.create(
            number=number, organization_id=number.organization_id, body=body, headers={}
        ).pk

    a, b = chats
    batches = [
        [
            event(inbound_body(number, wamid="wamid.in.a", wa_id=a)),
            event(status_body(number, (f"wamid.out.{b}", "delivered", now))),
        ],
        [
            event(inbound_body(number, wamid="wamid.in.b", wa_id=b)),
            event(status_body(number, (f"wamid.out.{a}", "delivered", now))),
        ],
    ]
    barrier = threading.Barrier(2, timeout=3)

    def pause(sender, **kwargs):
        # Broken (timed out) when the other batch is waiting for our locks: go on.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    def run(ids):
        try:
            services.webhook_events_process(ids)
        finally:
            connection.close()

    signals.statuses_received.connect(pause, weak=False, dispatch_uid="test-pause")
    try:
        threads = [threading.Thread(target=run, args=(ids,)) for ids in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        signals.statuses_received.disconnect(dispatch_uid="test-pause")
    events = WebhookEvent.objects.filter(pk__in=[pk for ids in batches for pk in ids])
    assert [(e.attempts, e.error) for e in events] == [(1, "")] * 4  # no retry was needed
    assert all(e.processed_at for e in events)
    assert set(
        Message.objects.filter(wamid__startswith="wamid.out.").values_list("status", flat=True)
    ) == {"delivered"}
    assert Message.objects.filter(wamid__in=["wamid.in.a", "wamid.in.b"]).count() == 2
