"""Server time of the pages people wait on, on the demo data.

    .venv/bin/python bench/pages.py [--runs 20] [--database sqlite:////tmp/porfin_bench_pages.sqlite3]
        [--checkout PATH]

1. Creates a fresh database (SQLite by default; a PostgreSQL URL whose database is a bench's,
   ``porfin_bench…``/``…_bench``, is dropped and created again) and loads the demo as
   ``python3 dev.py run`` does (``demo``, ``campaigns_demo``, ``assistant_demo``,
   ``appointments_demo``, ``flow_demo``: 16 chats with weeks of history).
2. Times each page in-process with Django's test client (middleware, view, queries, template),
   ``--runs`` times after one warm-up, and prints one line per page: server time p50/p95/max,
   the CPU time p50 of this process (what load on a shared box barely moves), the number of
   queries, and PASS/FAIL of the p95 against the target. The load average is printed first and
   last: compare figures only with it beside them.

``--checkout PATH`` measures another checkout's code with this script (e.g. a worktree of
main: ``git worktree add --detach /tmp/ref main``), so both are timed the same way in the same
minute; give each its own database.

Sign-in is timed as the form, the POST that checks the password (the hasher is most of it:
Argon2id at OWASP's parameters, ``accounts.hashers``; PBKDF2's 1,000,000 rounds before) and the
page it lands on.

Target (issue 20): every page < 300 ms server time (p95).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

TARGET_MS = 300.0
# What `python3 dev.py run` loads, in its order (a checkout without one of them skips it).
DEMOS = ["demo", "campaigns_demo", "assistant_demo", "appointments_demo", "flow_demo"]


def fresh_database(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg
    from _ownership import require_bench_database  # bench/ (this script's folder) is on the path

    name = require_bench_database(url)
    server = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database", default="sqlite:////tmp/porfin_bench_pages.sqlite3")
    parser.add_argument(
        "--checkout",
        default=str(Path(__file__).resolve().parents[1]),
        help="the checkout whose code is measured (default: this one)",
    )
    args = parser.parse_args()

    root = Path(args.checkout).resolve()
    sys.path.insert(0, str(root))
    os.chdir(root)
    fresh_database(args.database)
    os.environ["DATABASE_URL"] = args.database
    os.environ.pop("REDIS_URL", None)
    os.environ["LOG_LEVEL"] = "WARNING"  # not one line per request
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    import io

    from django.core.management import call_command, get_commands
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from inbox.management.commands.demo import DEMO_PASSWORD, OWNER_EMAIL
    from inbox.models import Chat

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    loaded = [name for name in DEMOS if name in get_commands()]
    for name in loaded:
        call_command(name, stdout=io.StringIO())
    print(f"checkout {root} on {connection.vendor}")
    print(f"demo loaded in {time.perf_counter() - started:.1f} s ({', '.join(loaded)})")

    try:  # as config/asgi.py does once the server has started (checkouts that do)
        from kernel.startup import freeze_startup_objects
    except ImportError:
        pass
    else:
        freeze_startup_objects()

    owner = User.objects.get(email=OWNER_EMAIL)
    chat = Chat.objects.filter(organization__slug="clinica-sorriso").order_by("pk").first()

    def signed_in() -> Client:
        client = Client()
        client.force_login(owner)
        return client

    def login_post(client):
        response = Client().post(
            "/accounts/login/", {"login": OWNER_EMAIL, "password": DEMO_PASSWORD}
        )
        assert response.status_code == 302, f"sign-in failed: HTTP {response.status_code}"
        return response

    pane = {"HX-Request": "true", "HX-Target": "chat-pane"}
    pages = [
        ("login form", lambda c: Client().get("/accounts/login/"), None),
        ("login (POST)", login_post, None),
        ("home after login", lambda c: c.get("/"), signed_in()),
        ("chat open", lambda c: c.get(f"/inbox/{chat.code}/"), signed_in()),
        (
            "chat open (htmx pane)",
            lambda c: c.get(f"/inbox/{chat.code}/", headers=pane),
            signed_in(),
        ),
        ("inbox list", lambda c: c.get("/inbox/?status=any"), signed_in()),
        ("contacts", lambda c: c.get("/campaigns/contacts/"), signed_in()),
        ("import", lambda c: c.get("/campaigns/contacts/import/"), signed_in()),
    ]
    print(f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}, {args.runs} runs each")
    header = f"{'page':24} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu p50':>8} {'queries':>8}"
    print(f"{header}  p95 < {TARGET_MS:.0f} ms")
    failed = []
    for name, request, client in pages:
        status = request(client).status_code  # warm-up
        queries: list[str] = []

        def count(run, sql, *rest, queries=queries):
            queries.append(sql)
            return run(sql, *rest)

        with connection.execute_wrapper(count):
            request(client)
        times, cpu = [], []
        for _run in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            request(client)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        p95 = percentile(times, 0.95)
        verdict = "PASS" if p95 < TARGET_MS and status < 400 else "FAIL"
        if verdict == "FAIL":
            failed.append(name)
        print(
            f"{name:24} {statistics.median(times):8.1f} {p95:8.1f} {max(times):8.1f} "
            f"{statistics.median(cpu):8.1f} {len(queries):8d}  {verdict} (HTTP {status})",
            flush=True,
        )
    print(f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    print(f"FAIL: {', '.join(failed)}" if failed else "all pages PASS")


if __name__ == "__main__":
    main()
