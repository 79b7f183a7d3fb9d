"""Integrator API benchmark (issue 7).

    .venv/bin/python bench/api_load.py [--chats 20000] [--clients 100] [--requests 30]

1. Seeds a PostgreSQL database (``porfin_bench_api``) with one organization, ``--chats`` chats
   (10 messages each, service windows open) and one API key per client.
2. Serves it with uvicorn (2 workers; Redis for the cache, throttles and the django-q2 broker).
3. ``--clients`` concurrent clients, each with its own key and keep-alive connection, alternate
   ``GET /api/v1/chats/`` and ``POST /api/v1/chats/<id>/messages/`` (with an Idempotency-Key),
   ``--requests`` each. Prints p50/p95/p99 of the server time (the ``Server-Timing`` header the
   API sets: the view with its queries, excluding queueing) and of the client-side latency.

Target (issue 7): server time p95 < 50 ms for both at 100 concurrent clients.
"""

import argparse
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB_NAME = "porfin_bench_api"
PG = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/12"
PORT = 8767

SEED_SQL = """
INSERT INTO inbox_contact (organization_id, code, wa_id, phone, profile_name, name, email, tags, attributes,
    language, time_zone, opt_in, opt_in_source, stage, notes, conversion_source,
    created_at, updated_at)
SELECT %(org)s, gen_random_uuid(), (5511900000000 + g)::text, '+' || (5511900000000 + g)::text, 'Cliente ' || g,
    'Cliente ' || g, '', '[]', '{}', '', '', 'unknown', '', 'lead', '', '', now(), now()
FROM generate_series(1, %(chats)s) g;

INSERT INTO inbox_chat (organization_id, code, contact_id, number_id, status, assignee_id, last_message_at,
    last_message_preview, unread_count, window_expires_at, ai_enabled, tags, seq, created_at)
SELECT %(org)s, gen_random_uuid(), c.id, %(number)s, (ARRAY['open','open','pending','resolved'])[1 + (c.id %% 4)],
    NULL, now() - (c.id || ' minutes')::interval, 'Mensagem ' || c.id, 0, now() + interval '6 hours',
    false, '[]', 0, now()
FROM inbox_contact c WHERE c.organization_id = %(org)s;

INSERT INTO inbox_message (organization_id, code, chat_id, number_id, direction, type, text, content, wamid,
    reply_to_wamid, status, error_title, error_details, author_type, author_ref, timestamp, created_at)
SELECT %(org)s, gen_random_uuid(), ch.id, %(number)s, CASE WHEN g %% 2 = 0 THEN 'in' ELSE 'out' END, 'text',
    'Olá, mensagem ' || g, jsonb_build_object('type', 'text', 'text', jsonb_build_object('body', 'Olá ' || g)),
    'wamid.bench.' || ch.id || '.' || g, '', CASE WHEN g %% 2 = 0 THEN 'received' ELSE 'read' END, '', '',
    CASE WHEN g %% 2 = 0 THEN 'customer' ELSE 'user' END, '', now() - ((10 - g) || ' minutes')::interval, now()
FROM inbox_chat ch, generate_series(1, 10) g WHERE ch.organization_id = %(org)s;
"""


def percentile(values, p):
    values = sorted(v for v in values if v == v)  # errors carry no Server-Timing (nan)
    return (
        values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
        if values
        else float("nan")
    )


def environment() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "REDIS_URL": REDIS,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",  # as in production (DEBUG keeps every query in memory)
        "EMAIL_URL": "consolemail://",  # production refuses to start without e-mail
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback
        "LOG_LEVEL": "WARNING",
        # Production settings need their own keys. Bench-only values.
        "SECRET_KEY": "bench-api-secret-key-not-for-production-0123456789",
        "FIELD_ENCRYPTION_KEY": "YmVuY2gtYXBpLWZlcm5ldC1rZXktMDEyMzQ1Njc4OTA=",
        "EGRESS_ALLOW_PRIVATE": "0",
    }


def recreate_database():
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=environment(), check=True
    )


def seed(chats: int, clients: int) -> tuple[list[str], list[str]]:
    os.environ.update(environment())
    import django

    django.setup()
    from django.db import connection

    from accounts.api_auth import api_key_create
    from accounts.models import Organization
    from inbox.models import Chat
    from integrations.models import WhatsAppNumber

    org = Organization.objects.create(name="Bench API Clinic", slug="bench-api")
    number = WhatsAppNumber.objects.create(
        organization=org,
        name="Bench",
        display_phone_number="551140000000",
        phone_number_id="777000",
        waba_id="777001",
        access_token="bench-token",
        app_secret="bench-secret",
    )
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL, {"org": org.pk, "number": number.pk, "chats": chats})
        cursor.execute("ANALYZE")
    scopes = ["chats:read", "messages:write"]
    secrets = [
        api_key_create(organization=org, name=f"client {i}", scopes=scopes, created_by=None)[1]
        for i in range(clients)
    ]
    codes = [
        str(c)
        for c in Chat.objects.filter(organization=org, status="open").values_list(
            "code", flat=True
        )[:2000]
    ]
    print(
        f"seeded {chats:,} chats and {chats * 10:,} messages in {time.monotonic() - started:.1f} s"
    )
    return secrets, codes


def serve() -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(PORT),
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=environment(),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
            return server
        except requests.RequestException:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("uvicorn did not start")


def load(secrets: list[str], codes: list[str], per_client: int) -> dict:
    base = f"http://127.0.0.1:{PORT}/api/v1"
    results = {"list": [], "send": []}
    statuses: Counter = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(len(secrets))

    def client(secret: str):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {secret}"
        rng = random.Random(secret)
        barrier.wait()
        for i in range(per_client):
            started = time.perf_counter()
            if i % 2 == 0:
                kind = "list"
                response = session.get(f"{base}/chats/", params={"limit": 50}, timeout=60)
            else:
                kind = "send"
                response = session.post(
                    f"{base}/chats/{rng.choice(codes)}/messages/",
                    json={"type": "text", "text": {"body": "Sua consulta está confirmada."}},
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                    timeout=60,
                )
            latency = (time.perf_counter() - started) * 1000
            timing = response.headers.get("Server-Timing", "app;dur=nan").split("dur=")[1]
            with lock:
                statuses[(kind, response.status_code)] += 1
                results[kind].append((float(timing), latency))

    started = time.monotonic()
    with ThreadPoolExecutor(len(secrets)) as pool:
        list(pool.map(client, secrets))
    elapsed = time.monotonic() - started
    return {"results": results, "statuses": statuses, "elapsed": elapsed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=30, help="per client")
    args = parser.parse_args()
    recreate_database()
    secrets, codes = seed(args.chats, args.clients)
    server = serve()
    try:
        load(secrets[:5], codes, 4)  # warm up both workers
        alone = load(secrets[:1], codes, 40)  # one client: the cost of a request without contention
        outcome = load(secrets, codes, args.requests)
    finally:
        server.terminate()
        server.wait(timeout=20)
    total = sum(len(v) for v in outcome["results"].values())
    print(
        f"{args.clients} concurrent clients, {total} requests in {outcome['elapsed']:.1f} s "
        f"({total / outcome['elapsed']:.0f} req/s)"
    )
    print("statuses:", dict(sorted(outcome["statuses"].items())))
    print(f"{'endpoint':<32}{'server p50':>11}{'p95':>8}{'p99':>8}{'client p50':>12}{'p95':>8}")
    for kind, label in (
        ("list", "GET /api/v1/chats/"),
        ("send", "POST /api/v1/chats/<id>/messages/"),
    ):
        server_ms = [s for s, _ in outcome["results"][kind]]
        client_ms = [c for _, c in outcome["results"][kind]]
        print(
            f"{label:<32}{percentile(server_ms, 50):>9.1f}ms{percentile(server_ms, 95):>6.1f}ms"
            f"{percentile(server_ms, 99):>6.1f}ms{percentile(client_ms, 50):>10.1f}ms{percentile(client_ms, 95):>6.1f}ms"
        )
    for kind, label in (("list", "GET (1 client alone)"), ("send", "POST (1 client alone)")):
        server_ms = [s for s, _ in alone["results"][kind]]
        client_ms = [c for _, c in alone["results"][kind]]
        print(
            f"{label:<32}{percentile(server_ms, 50):>9.1f}ms{percentile(server_ms, 95):>6.1f}ms"
            f"{percentile(server_ms, 99):>6.1f}ms{percentile(client_ms, 50):>10.1f}ms{percentile(client_ms, 95):>6.1f}ms"
        )
    worst = max(percentile([s for s, _ in outcome["results"][k]], 95) for k in ("list", "send"))
    print(
        f"target server p95 < 50 ms: {'met' if worst < 50 else 'NOT met'} (worst p95 {worst:.1f} ms)"
    )


if __name__ == "__main__":
    main()
