"""Reports dashboard benchmark.

    .venv/bin/python bench/reports_dashboard.py [--messages 2000000] [--chats 20000] [--runs 20]

1. Seeds a fresh PostgreSQL database (``porfin_bench_reports``) with one organization, five
   agents, ``--chats`` chats and ``--messages`` timeline rows spread over the last 90 days (SQL
   ``generate_series``): conversations of a customer message, a first reply by an agent or the
   assistant after 2–600 s, seven more messages and a resolution.
2. Aggregates the 91 local days into ``DailyStat`` rows with the same code as the periodic task
   (``reports.stats.stats_rebuild``) and prints how long it took.
3. Renders the 90-day dashboard in-process (Django's test client: middleware, view, queries,
   template) ``--runs`` times and prints p50/p95/max server time.

Target (issue 8): the 90-day dashboard with 2,000,000 messages renders in < 300 ms.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._ownership import require_bench_database  # noqa: E402

DB_NAME = "porfin_bench_reports"
PG = "postgres://postgres@127.0.0.1:5432"

SEED_SQL = """
INSERT INTO inbox_contact (organization_id, code, wa_id, phone, profile_name, name, email, tags,
    attributes, language, time_zone, opt_in, opt_in_source, stage, notes, conversion_source,
    created_at, updated_at)
SELECT %(org)s, gen_random_uuid(), (5511900000000 + g)::text, '+' || (5511900000000 + g)::text,
    'Cliente ' || g, 'Cliente ' || g, '', '[]', '{}', '', '', 'unknown', '', 'lead', '', '',
    now() - ((g %% 90) || ' days')::interval, now()
FROM generate_series(1, %(chats)s) g;

INSERT INTO inbox_chat (organization_id, code, contact_id, number_id, status, last_message_at,
    last_message_preview, unread_count, ai_enabled, tags, seq, created_at)
SELECT %(org)s, gen_random_uuid(), c.id, %(number)s, 'resolved', now(), '', 0, false, '[]', 0, now()
FROM inbox_contact c WHERE c.organization_id = %(org)s ORDER BY c.id;

INSERT INTO inbox_message (organization_id, code, chat_id, number_id, direction, type, text,
    content, reply_to_wamid, status, error_title, error_details, author_type, author_user_id,
    author_ref, timestamp, created_at)
SELECT %(org)s, gen_random_uuid(), %(first_chat)s + (k %% %(chats)s), %(number)s,
    CASE WHEN p = 9 THEN 'int' WHEN p = 0 OR p %% 2 = 0 THEN 'in' ELSE 'out' END,
    CASE WHEN p = 9 THEN 'activity' ELSE 'text' END,
    CASE WHEN p = 9 THEN 'resolved' ELSE 'Olá, mensagem ' || k || '.' || p END,
    CASE WHEN p = 9
        THEN '{"type": "activity", "activity": {"kind": "status", "status": "resolved"}}'::jsonb
        ELSE '{}'::jsonb END,
    '', CASE WHEN p %% 2 = 0 THEN 'received' ELSE 'read' END, '', '',
    CASE WHEN p = 0 OR (p %% 2 = 0 AND p < 9) THEN 'customer'
         WHEN k %% 3 = 0 AND p IN (1, 9) THEN CASE WHEN p = 1 THEN 'assistant' ELSE 'system' END
         ELSE 'user' END,
    CASE WHEN (p %% 2 = 1 OR p = 9) AND NOT (k %% 3 = 0 AND p IN (1, 9))
         THEN (%(agents)s::bigint[])[1 + (k %% 5)] END,
    '',
    %(start)s::timestamptz + (k * %(spacing)s) * interval '1 second'
        + CASE WHEN p = 0 THEN interval '0'
               WHEN p = 1 THEN (2 + (k * 7919) %% 600) * interval '1 second'
               WHEN p = 9 THEN interval '20 minutes'
               ELSE (600 + p * 60) * interval '1 second' END,
    now()
FROM generate_series(0, %(conversations)s - 1) k CROSS JOIN generate_series(0, 9) p;
ANALYZE inbox_message;
"""


def fresh_database():
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        require_bench_database(DB_NAME)
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DB_NAME}"')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--chats", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    fresh_database()
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ["REDIS_URL"] = ""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from accounts.models import Membership, Organization, Role, User
    from integrations.models import WhatsAppNumber
    from reports import stats
    from reports.models import DailyStat

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench Clinic", slug="bench-reports")
    owner = User.objects.create_user(email="owner@reports.bench", password="bench-pass-1")
    Membership.objects.create(user=owner, organization=org, role=Role.ADMIN)
    agents = []
    for index in range(5):
        agent = User.objects.create_user(
            email=f"agent{index}@reports.bench", password="bench-pass-1", name=f"Agent {index}"
        )
        Membership.objects.create(user=agent, organization=org, role=Role.AGENT)
        agents.append(agent.pk)
    number = WhatsAppNumber.objects.create(
        organization=org, name="Bench", display_phone_number="551140000000",
        phone_number_id="777000", access_token="t", app_secret="s",
    )  # fmt: skip
    conversations = args.messages // 10
    start = timezone.now() - timedelta(days=90)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        first_chat = None
        for statement in SEED_SQL.split(";\n"):
            if not statement.strip():
                continue
            if "inbox_message" in statement and first_chat is None:
                cursor.execute(
                    "SELECT min(id) FROM inbox_chat WHERE organization_id = %s", [org.pk]
                )
                first_chat = cursor.fetchone()[0]
            cursor.execute(
                statement,
                {
                    "org": org.pk, "number": number.pk, "chats": args.chats,
                    "first_chat": first_chat, "agents": agents, "start": start,
                    "spacing": 90 * 86400 / conversations, "conversations": conversations,
                },
            )  # fmt: skip
        cursor.execute("SELECT count(*) FROM inbox_message")
        total = cursor.fetchone()[0]
    print(f"seeded {total:,} messages in {time.perf_counter() - started:.1f} s")

    today = stats.local_today(org)
    started = time.perf_counter()
    days = stats.stats_rebuild(org, first=today - timedelta(days=90), last=today)
    aggregation = time.perf_counter() - started
    print(
        f"aggregated {days} days into {DailyStat.objects.count()} daily rows in "
        f"{aggregation:.1f} s ({aggregation / days * 1000:.0f} ms per day)"
    )

    setup_test_environment()
    client = Client()
    client.force_login(owner)
    url = "/reports/?period=90"
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    figures = {card["label"]: card["value"] for card in response.context["cards"]}
    timings = []
    for _run in range(args.runs):
        started = time.perf_counter()
        client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    print(
        f"90-day dashboard: p50 {statistics.median(timings):.0f} ms, p95 {p95:.0f} ms, "
        f"max {timings[-1]:.0f} ms over {args.runs} renders (target < 300 ms)"
    )
    print("  " + ", ".join(f"{k}: {v}" for k, v in list(figures.items())[:8]))


if __name__ == "__main__":
    main()
