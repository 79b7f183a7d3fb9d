"""Live inbox benchmark (issue 4).

    .venv/bin/python bench/inbox_load.py [--chats 100000] [--messages 2000000] [--sockets 200]
                                         [--rate 100] [--seconds 10]

1. Seeds a PostgreSQL database (``porfin_bench_inbox``) with one organization, ``--chats`` chats
   and ``--messages`` messages (SQL ``generate_series``, so millions take seconds).
2. Server time of the chat list and the chat view, measured in-process (Django's test client,
   the view code and its queries, no network): p50/p95 over 200 requests each.
3. End to end: two uvicorn processes and one inbound django-q2 worker with Redis, ``--sockets``
   websockets split over both processes; signed webhooks posted at ``--rate`` per second to
   process A; latency from each POST to the ``message.new`` event on every socket.

Targets (issue 4): server time p95 < 100 ms; end to end p95 < 250 ms, p99 < 500 ms.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._ownership import require_bench_database  # noqa: E402

DB_NAME = "porfin_bench_inbox"
PG = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/13"
SECRET = "bench-inbox-secret"
# Production settings (DEBUG off) need their own keys; fixed so that --reuse can read the
# credentials stored by an earlier run. Bench-only values.
ENVIRONMENT = {
    "SECRET_KEY": "bench-inbox-secret-key-not-for-production-0123456789",
    "FIELD_ENCRYPTION_KEY": "YmVuY2gtaW5ib3gtZmVybmV0LWtleS0wMTIzNDU2Nzg=",
}


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def recreate_database():
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        require_bench_database(DB_NAME)
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    env = {**os.environ, "DATABASE_URL": f"{PG}/{DB_NAME}", "REDIS_URL": ""}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )


SEED_SQL = """
INSERT INTO inbox_contact (organization_id, code, wa_id, phone, profile_name, name, email, tags, attributes,
    language, time_zone, opt_in, opt_in_source, stage, notes, conversion_source,
    created_at, updated_at)
SELECT %(org)s, gen_random_uuid(), (5511900000000 + g)::text, '+' || (5511900000000 + g)::text, 'Cliente ' || g,
    'Cliente ' || g, '', '[]', '{}', '', '', 'unknown', '', 'lead', '', '', now(), now()
FROM generate_series(1, %(chats)s) g;

INSERT INTO inbox_chat (organization_id, code, contact_id, number_id, status, assignee_id, last_message_at,
    last_message_preview, unread_count, window_expires_at, ai_enabled, tags, seq, created_at, held_by,
    priority)
SELECT %(org)s, gen_random_uuid(), c.id, %(number)s,
    (ARRAY['open','open','pending','resolved'])[1 + (c.id %% 4)],
    CASE WHEN c.id %% 3 = 0 THEN %(user)s ELSE NULL END,
    now() - (c.id || ' minutes')::interval, 'Mensagem ' || c.id, c.id %% 3, now() + interval '1 hour',
    false, '[]', 0, now(), '', 0
FROM inbox_contact c WHERE c.organization_id = %(org)s;

INSERT INTO inbox_message (organization_id, code, chat_id, number_id, direction, type, text, content, wamid,
    reply_to_wamid, status, error_title, error_details, author_type, author_ref, timestamp, created_at,
    handled_by)
SELECT %(org)s, gen_random_uuid(), ch.id, %(number)s,
    CASE WHEN g %% 2 = 0 THEN 'in' ELSE 'out' END, 'text',
    'Olá, mensagem número ' || g || ' sobre consulta e horário',
    jsonb_build_object('type', 'text', 'text', jsonb_build_object('body', 'Olá, mensagem número ' || g)),
    'wamid.bench.' || ch.id || '.' || g, '',
    CASE WHEN g %% 2 = 0 THEN 'received' ELSE 'read' END, '', '',
    CASE WHEN g %% 2 = 0 THEN 'customer' ELSE 'user' END, '',
    now() - ((%(per_chat)s - g) || ' minutes')::interval, now(), ''
FROM inbox_chat ch, generate_series(1, %(per_chat)s) g
WHERE ch.organization_id = %(org)s;
"""


def seed(chats, messages):
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ["REDIS_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    from accounts.models import Membership, Organization, Role, User
    from integrations.models import WhatsAppNumber

    org = Organization.objects.create(name="Bench Clinic", slug="bench-clinic")
    user = User.objects.create_user(
        email="bench@inbox.test", password="bench-password-1", name="Bench Operator"
    )
    Membership.objects.create(user=user, organization=org, role=Role.OPERATOR)
    number = WhatsAppNumber.objects.create(
        organization=org,
        name="Bench",
        display_phone_number="551140000000",
        phone_number_id="555000",
        waba_id="555001",
        access_token="bench-token",
        app_secret=SECRET,
        send_read_receipts=False,
    )
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            SEED_SQL,
            {
                "org": org.pk,
                "number": number.pk,
                "user": user.pk,
                "chats": chats,
                "per_chat": max(1, messages // chats),
            },
        )
        # What autovacuum does soon after a bulk load: statistics, and the visibility map that
        # index-only scans (the tab counts) rely on.
        cursor.execute("VACUUM ANALYZE")
    print(
        f"seeded {chats:,} chats and {max(1, messages // chats) * chats:,} messages in {time.monotonic() - started:.1f} s"
    )
    return org, user, number


def existing():
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ["REDIS_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from accounts.models import Organization, User
    from integrations.models import WhatsAppNumber

    org = Organization.objects.get(slug="bench-clinic")
    return (
        org,
        User.objects.get(email="bench@inbox.test"),
        WhatsAppNumber.objects.get(organization=org),
    )


def server_time(user, org):
    from django.test import Client

    from inbox.models import Chat

    client = Client()
    client.force_login(user)
    codes = list(
        Chat.objects.filter(organization=org).order_by("?").values_list("code", flat=True)[:200]
    )
    results = {}
    for name, urls in {
        "chat list (/inbox/)": ["/inbox/"] * 200,
        "chat list, search": ["/inbox/?status=any&q=Cliente 4242"] * 50,
        "chat view (/inbox/<chat>/)": [f"/inbox/{code}/" for code in codes],
    }.items():
        client.get(urls[0])  # warm up
        timings = []
        for url in urls:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        results[name] = (statistics.median(timings), percentile(timings, 95))
    print("\nServer time (in-process, ms)        p50      p95   target p95 < 100")
    for name, (p50, p95) in results.items():
        print(f"  {name:<34}{p50:7.1f}  {p95:7.1f}")
    return client, codes


def end_to_end(client, org, number, sockets, rate, seconds):
    import requests
    import websockets

    from inbox.models import Chat
    from integrations.whatsapp import payloads, signature
    from tests.servers import ServerProcess

    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "REDIS_URL": REDIS,
        "TASK_RUNNER": "django_q",
        "SANDBOX_ENABLED": "0",
        "DEBUG": "0",  # as in production (DEBUG keeps every query in memory)
        "EMAIL_URL": "consolemail://",  # production refuses to start without e-mail
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback
        "LOG_LEVEL": "WARNING",
        **ENVIRONMENT,
    }
    servers = [ServerProcess(env=env).start(), ServerProcess(env=env).start()]
    worker_log = open(ROOT / "var" / "bench-inbox-worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env={**os.environ, **env, "Q_CLUSTER_NAME": "porfin-inbound", "Q_WORKERS": "2"},
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    measured = rate * seconds
    chats = list(Chat.objects.filter(organization=org).select_related("contact")[: measured + 20])
    chats, warmup = chats[:measured], chats[measured:]

    def wait_processed(timeout):
        from datetime import timedelta

        from django.utils import timezone

        from integrations.models import WebhookEvent

        deadline = time.monotonic() + timeout
        recent = timezone.now() - timedelta(minutes=2)
        while WebhookEvent.objects.filter(processed_at=None, received_at__gte=recent).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the inbound worker did not process the warm-up")
            time.sleep(0.2)

    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    by_chat: dict[str, list[float]] = {}  # each chat's latencies over the sockets
    try:
        time.sleep(3)  # let the worker start

        async def listen(url, ready, stop):
            seen = set()
            async with websockets.connect(
                url,
                additional_headers={"Cookie": cookie, "Origin": url.replace("ws", "http", 1)},
                max_queue=None,
            ) as ws:
                await ws.recv()
                ready.set()
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue
                    now = time.monotonic()
                    data = json.loads(raw)
                    for event in data if isinstance(data, list) else [data]:  # bursts: arrays
                        chat = event.get("chat")
                        first = chat in sent_at and chat not in seen  # on this socket
                        if event.get("type") == "message.new" and first:
                            seen.add(chat)
                            latencies.append((now - sent_at[chat]) * 1000)
                            by_chat.setdefault(chat, []).append(latencies[-1])

        async def scenario():
            stop = asyncio.Event()
            readies = []
            tasks = []
            for index in range(sockets):
                server = servers[index % 2]
                ready = asyncio.Event()
                readies.append(ready)
                tasks.append(
                    asyncio.create_task(
                        listen(server.url.replace("http", "ws") + "/ws/live/", ready, stop)
                    )
                )
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
            session = requests.Session()
            url = f"{servers[0].url}/webhooks/whatsapp/{number.webhook_key}/"
            run = int(time.time())  # new wamids each run: --reuse must not post duplicates

            def post(chat, wamid):
                body = payloads.encode_webhook(
                    payloads.build_webhook(
                        number.waba_id,
                        [
                            payloads.build_messages_change(
                                phone_number_id=number.phone_number_id,
                                display_phone_number="551140000000",
                                contacts=[
                                    payloads.build_contact(
                                        wa_id=chat.contact.wa_id, profile_name="Bench"
                                    )
                                ],
                                messages=[
                                    payloads.build_inbound_message(
                                        wamid=wamid,
                                        from_wa_id=chat.contact.wa_id,
                                        message_type="text",
                                        content=payloads.build_text(wamid),
                                    )
                                ],
                            )
                        ],
                    )
                )
                headers = {
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": signature.sign(body, SECRET),
                }
                return session.post(url, data=body, timeout=10, headers=headers)

            # Warm up: the worker is running and every connection is open before timing starts.
            for index, chat in enumerate(warmup):
                await asyncio.to_thread(post, chat, f"wamid.warmup.{run}.{index}")
            await asyncio.to_thread(wait_processed, 30)
            started = time.monotonic()
            for index, chat in enumerate(chats):
                due = started + index / rate
                await asyncio.sleep(max(0, due - time.monotonic()))
                sent_at[str(chat.code)] = time.monotonic()
                await asyncio.to_thread(post, chat, f"wamid.e2e.{run}.{index}")
            await asyncio.sleep(5)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(scenario())
    finally:
        worker.terminate()
        worker.wait(10)
        worker_log.close()
        for server in servers:
            server.stop()
    expected = len(chats) * sockets
    print(
        f"\nEnd to end: {len(chats)} webhooks at {rate}/s, {sockets} sockets over 2 ASGI processes"
    )
    print(f"  events received: {len(latencies):,} of {expected:,}")
    if latencies:
        print(
            f"  latency ms: p50 {percentile(latencies, 50):.0f}  p95 {percentile(latencies, 95):.0f}  "
            f"p99 {percentile(latencies, 99):.0f}   (targets p95 < 250, p99 < 500)"
        )
        # Where a slow delivery was slow: if the first socket to see a message saw it late, the
        # time went into ingest and processing; if only the last did, into the fan-out.
        firsts = [min(v) for v in by_chat.values()]
        spreads = [max(v) - min(v) for v in by_chat.values()]
        print(
            f"  first socket per message ms: p50 {percentile(firsts, 50):.0f}  "
            f"p99 {percentile(firsts, 99):.0f};  last minus first: p50 "
            f"{percentile(spreads, 50):.0f}  p99 {percentile(spreads, 99):.0f}"
        )
        order = {chat: index for index, chat in enumerate(sent_at)}
        slowest = sorted(by_chat, key=lambda chat: -max(by_chat[chat]))[:5]
        print(
            "  slowest messages (sent at s: worst ms): "
            + ", ".join(f"{order[c] / rate:.1f}: {max(by_chat[c]):.0f}" for c in slowest)
        )
        missing = [index for chat, index in order.items() if chat not in by_chat]
        if missing:
            print(f"  never delivered, by send order: {missing[:10]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--reuse", action="store_true", help="keep the data of the previous run")
    args = parser.parse_args()
    random.seed(1)
    os.environ.update(ENVIRONMENT)
    if args.reuse:
        org, user, number = existing()
    else:
        recreate_database()
        org, user, number = seed(args.chats, args.messages)
    client, _ = server_time(user, org)
    end_to_end(client, org, number, args.sockets, args.rate, args.seconds)


if __name__ == "__main__":
    main()
