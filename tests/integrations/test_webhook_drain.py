"""The drain (issue 21): a task claims stored deliveries itself, many per task, exactly once,
each chat's messages in delivery order even with two workers draining at once."""

import threading
import time

import pytest
from django.db import connection, transaction

from accounts.models import Organization
from inbox.models import Chat, Contact, Message
from integrations import services
from integrations.models import WebhookEvent, WhatsAppNumber
from tests.integrations.conftest import inbound_body

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def number():
    organization = Organization.objects.create(name="Clínica Drain", slug="clinica-drain")
    return WhatsAppNumber.objects.create(
        organization=organization,
        name="Main",
        display_phone_number="+55 11 4000-0001",
        phone_number_id="778",
        waba_id="1001",
        access_token="token-drain",
        app_secret="secret-drain",
    )


def store(number, wamid: str, wa_id: str) -> int:
    return WebhookEvent.objects.create(
        number=number,
        organization_id=number.organization_id,
        body=inbound_body(number, wamid=wamid, wa_id=wa_id),
        headers={},
    ).pk


def test_one_drain_takes_a_whole_backlog_in_batches_and_stores_each_message_once(
    number, monkeypatch
):
    if not services.webhook_drain_enabled():
        pytest.skip("the drain is PostgreSQL's")
    monkeypatch.setattr(services, "DRAIN_BATCH", 4)
    ids = [store(number, f"wamid.d{i}", f"55119100000{i % 3:02d}") for i in range(10)]
    store(number, "wamid.d0", "5511910000000")  # Meta delivers one message twice
    assert services.webhook_events_drain() == 11
    events = WebhookEvent.objects.filter(number=number)
    assert [(e.attempts, e.error) for e in events] == [(1, "")] * 11
    assert all(e.processed_at for e in events)
    assert Message.objects.filter(number=number).count() == 10
    assert services.webhook_events_drain() == 0  # nothing left; processed ones are not taken
    for event_id in ids[:3]:  # a retried task or a sweep finds them done: no second message
        services.webhook_events_process([event_id])
    assert Message.objects.filter(number=number).count() == 10


def test_a_claimed_delivery_whose_worker_died_is_left_to_the_sweep_and_stored_once(number):
    if not services.webhook_drain_enabled():
        pytest.skip("the drain is PostgreSQL's")
    event_id = store(number, "wamid.dead", "5511910000009")
    WebhookEvent.objects.filter(pk=event_id).update(attempts=1)  # claimed; the worker died
    assert services.webhook_events_drain() == 0  # a drain never retries it in a batch
    assert services.webhook_events_sweep(older_than_seconds=0) == 1  # alone, by the sweep
    assert WebhookEvent.objects.get(pk=event_id).processed_at
    assert Message.objects.filter(wamid="wamid.dead").count() == 1


def test_two_drains_keep_each_chats_messages_in_delivery_order(number, monkeypatch):
    """Worker A claims the first batch and stalls before it has locked the chat (parsing);
    worker B would claim the next batch, for the same chat, meanwhile. B must wait for A's
    commit: the chat's messages come out in delivery order, each once."""
    if not services.webhook_drain_enabled():
        pytest.skip("the drain is PostgreSQL's")
    monkeypatch.setattr(services, "DRAIN_BATCH", 2)
    wa_id = "5511910000005"
    contact = Contact.objects.create(
        organization=number.organization, wa_id=wa_id, phone=f"+{wa_id}"
    )
    Chat.objects.create(organization=number.organization, contact=contact, number=number)
    wamids = [f"wamid.o{i}" for i in range(8)]
    for wamid in wamids:
        store(number, wamid, wa_id)
    stalled = threading.Event()
    parse = services._event_items

    def slow_parse(event):
        if not stalled.is_set():
            stalled.set()
            time.sleep(1.0)  # the other worker starts meanwhile
        return parse(event)

    def run():
        try:
            services.webhook_events_drain()
        finally:
            connection.close()

    monkeypatch.setattr(services, "_event_items", slow_parse)
    try:
        first = threading.Thread(target=run)
        first.start()
        assert stalled.wait(10)
        second = threading.Thread(target=run)
        second.start()
        for thread in (first, second):
            thread.join(30)
    finally:
        monkeypatch.undo()
    stored = list(
        Message.objects.filter(chat__contact=contact).order_by("pk").values_list("wamid", flat=True)
    )
    assert stored == wamids
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    assert list(Chat.objects.filter(contact=contact).values_list("unread_count", flat=True)) == [8]


def test_the_claim_walks_the_unclaimed_deliveries_in_order_whatever_the_statistics(number):
    """A burst fills the log faster than autovacuum analyzes it. The claim must still read its
    batch off the front of ``webhookevent_unclaimed`` and stop, not fetch and sort every
    unclaimed delivery (100-290 ms a claim in a 60 s burst on a 2-core box)."""
    if not services.webhook_drain_enabled():
        pytest.skip("the drain is PostgreSQL's")
    store(number, "wamid.s0", "5511910000001")
    with connection.cursor() as cursor:
        # A log of 60,000 deliveries, 20,000 not yet claimed, never analyzed since: PostgreSQL
        # guesses, as during a burst.
        table = WebhookEvent._meta.db_table
        cursor.execute(
            f"INSERT INTO {table} (number_id, organization_id, body, headers, received_at,"  # noqa: S608
            " processed_at, attempts, error) SELECT number_id, organization_id, body, headers,"
            " received_at, CASE WHEN n > 20000 THEN received_at END, 0, ''"
            f" FROM {table}, generate_series(1, 60000) n"
        )
        with transaction.atomic():
            services.claim_plan_pin(cursor)
            cursor.execute("EXPLAIN " + services.claim_sql(True), [services.DRAIN_BATCH])
            plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using webhookevent_unclaimed" in plan, plan
    assert "Sort" not in plan and "Bitmap" not in plan, plan
