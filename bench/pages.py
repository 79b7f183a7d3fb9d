"""Server time of the pages people wait on, on the demo data.

    .venv/bin/python bench/pages.py [--runs 15] [--database sqlite:////tmp/porfin_bench_pages.sqlite3]

1. Migrates a fresh database (SQLite by default; give a PostgreSQL URL to measure that) and
   loads the demo (``manage.py demo`` and ``campaigns_demo``: 16 chats with weeks of history).
2. Times each page in-process with Django's test client (middleware, view, queries, template),
   ``--runs`` times after one warm-up, and prints p50/p95/max and the number of queries.
   Login is timed as the sign-in form and the POST that checks the password: PBKDF2's
   1,000,000 rounds (Django's default) are most of the POST, ~0.25 s of one idle core.

Target (issue 20): login, opening a chat, contacts and import < 300 ms server time.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database", default="sqlite:////tmp/porfin_bench_pages.sqlite3")
    args = parser.parse_args()

    if args.database.startswith("sqlite:////"):
        Path(args.database.removeprefix("sqlite:///")).unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = args.database
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    import io

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from inbox.management.commands.demo import DEMO_PASSWORD, OWNER_EMAIL
    from inbox.models import Chat

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("demo", stdout=io.StringIO())
    call_command("campaigns_demo", stdout=io.StringIO())
    print(f"demo loaded in {time.perf_counter() - started:.1f} s")

    owner = User.objects.get(email=OWNER_EMAIL)
    chat = Chat.objects.filter(organization__slug="clinica-sorriso").order_by("pk").first()

    def signed_in() -> Client:
        client = Client()
        client.force_login(owner)
        return client

    def login_form(client):
        return Client().get("/accounts/login/")

    def login_post(client):
        return Client().post("/accounts/login/", {"login": OWNER_EMAIL, "password": DEMO_PASSWORD})

    pages = [
        ("login form", login_form, None),
        ("login (POST)", login_post, None),
        ("chat open", lambda c: c.get(f"/inbox/{chat.code}/"), signed_in()),
        (
            "chat open (htmx pane)",
            lambda c: c.get(
                f"/inbox/{chat.code}/", headers={"HX-Request": "true", "HX-Target": "chat-pane"}
            ),
            signed_in(),
        ),
        ("inbox list", lambda c: c.get("/inbox/?status=any"), signed_in()),
        ("contacts", lambda c: c.get("/campaigns/contacts/"), signed_in()),
        ("import", lambda c: c.get("/campaigns/contacts/import/"), signed_in()),
    ]
    print(f"{'page':24} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
    for name, request, client in pages:
        status = request(client).status_code  # warm-up
        times = []
        queries: list[str] = []

        def count(run, sql, *rest, queries=queries):
            queries.append(sql)
            return run(sql, *rest)

        with connection.execute_wrapper(count):
            request(client)
        for _run in range(args.runs):
            start = time.perf_counter()
            request(client)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(
            f"{name:24} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f} "
            f"{len(queries):8d}  (HTTP {status})"
        )


if __name__ == "__main__":
    main()
