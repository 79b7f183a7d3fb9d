"""Integrator API benchmark (issues 7 and 21), driven by ``wrk`` (not the server's Python).

    .venv/bin/python bench/api_load.py [--chats 20000] [--clients 100] [--duration 15]
        [--workers 2] [--http-concurrency 1] [--redis redis://127.0.0.1:6379/12] [--reuse]
        [--pairs 3] [--beside CHECKOUT [--rounds 6] [--together]]

1. Seeds its own PostgreSQL database (``--db``, default ``porfin_bench_api``: dropped and created
   by this bench only) with one organization, ``--chats`` chats (10 messages each, service
   windows open) and ``--keys`` API keys (secrets kept in ``var/<db>.keys`` for ``--reuse``).
2. Serves it with the README's production command (uvicorn, ``--workers`` processes, no access
   log; Redis db ``--redis`` for the cache, throttles and the django-q2 broker; nothing in it
   is cleared but the server's task queues, named for this bench) with ``bench/api_reference_settings.py``: the production settings plus a
   trivial Django JSON view at ``/bench/json/`` through the same middleware, the reference
   (and at ``/api/bench-json/`` with a Bearer header: the lean stack API-key calls take).
3. ``wrk`` (Debian: ``apt-get install wrk``) with ``--clients`` connections, for ``--duration``
   seconds each: the reference view; the API mix (``bench/api_mix.lua``: ``GET /api/v1/chats/``
   and ``POST /api/v1/chats/<id>/messages/`` alternating, the clients' keys in turn, a fresh
   Idempotency-Key per POST); one connection alone (a request's own cost); ``/healthz/live``.
   Prints requests/s, client p50/p95/p99, the server time (the API's ``Server-Timing``), the
   statuses and the API's share of the reference. ``--pairs N`` measures the reference and the
   mix N times each, alternating which goes first, and judges by the medians, the share by each
   pair's own ratio (a box whose speed drifts moves the two runs of a pair together).
   ``--beside CHECKOUT`` serves another checkout's code too and measures only the two mixes,
   one after the other in ``--rounds``; with ``--together`` both at once, half the connections
   each, so that the box's drift slows both alike.

Targets (issue 21): API ≥ 500 req/s at 100 connections on 2 cores, client p95 < 250 ms, server
p50 < 5 ms, ≥ 60% of the reference; ``/healthz/live`` ≥ 3,000 req/s.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._autovacuum import AutovacuumStandIn  # noqa: E402
from bench._ownership import require_bench_database  # noqa: E402

DB_NAME = "porfin_bench_api"
PG = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/12"
PORT = 8767
SERVER_ENV: dict = {}  # --workers etc. (set by main)

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
SELECT %(org)s, gen_random_uuid(), c.id, %(number)s, (ARRAY['open','open','pending','resolved'])[1 + (c.id %% 4)],
    NULL, now() - (c.id || ' minutes')::interval, 'Mensagem ' || c.id, 0, now() + interval '6 hours',
    false, '[]', 0, now(), '', 0
FROM inbox_contact c WHERE c.organization_id = %(org)s;

INSERT INTO inbox_message (organization_id, code, chat_id, number_id, direction, type, text, content, wamid,
    reply_to_wamid, status, error_title, error_details, author_type, author_ref, timestamp, created_at,
    handled_by)
SELECT %(org)s, gen_random_uuid(), ch.id, %(number)s, CASE WHEN g %% 2 = 0 THEN 'in' ELSE 'out' END, 'text',
    'Olá, mensagem ' || g, jsonb_build_object('type', 'text', 'text', jsonb_build_object('body', 'Olá ' || g)),
    'wamid.bench.' || ch.id || '.' || g, '', CASE WHEN g %% 2 = 0 THEN 'received' ELSE 'read' END, '', '',
    CASE WHEN g %% 2 = 0 THEN 'customer' ELSE 'user' END, '', now() - ((10 - g) || ' minutes')::interval, now(),
    ''
FROM inbox_chat ch, generate_series(1, 10) g WHERE ch.organization_id = %(org)s;
"""


def percentile(values, p):
    values = sorted(v for v in values if v == v)  # errors carry no Server-Timing (nan)
    return (
        values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
        if values
        else float("nan")
    )


QUEUE_KEYS = "django_q:porfin-bench-api*"  # bench/api_reference_settings.py's task queues


def drop_queued_tasks() -> int:
    """Delete the task queues of the bench's server (its own names, in its own Redis
    database): nothing runs them, and a run's sends leave thousands."""
    import redis

    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=QUEUE_KEYS))
    return client.delete(*keys) if keys else 0


def environment() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "REDIS_URL": REDIS,
        # The production settings plus the reference view's URL (bench/api_reference.py).
        "DJANGO_SETTINGS_MODULE": "bench.api_reference_settings",
        "DEBUG": "0",  # as in production (DEBUG keeps every query in memory)
        "EMAIL_URL": "consolemail://",  # production refuses to start without e-mail
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback
        "LOG_LEVEL": "WARNING",
        # Production settings need their own keys. Bench-only values.
        "SECRET_KEY": "bench-api-secret-key-not-for-production-0123456789",
        "FIELD_ENCRYPTION_KEY": "YmVuY2gtYXBpLWZlcm5ldC1rZXktMDEyMzQ1Njc4OTA=",
        "EGRESS_ALLOW_PRIVATE": "0",
        **SERVER_ENV,
    }


def recreate_database():
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        require_bench_database(DB_NAME)
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


def serve(
    workers: int, access_log: bool, shared_socket: bool = False, root: Path = ROOT, port: int = PORT
) -> subprocess.Popen:
    """The README's production command (``config.serve``: uvicorn, a socket per worker), or
    with ``shared_socket`` plain uvicorn, whose workers share one socket; ``root``: the
    checkout whose code it serves."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn" if shared_socket else "config.serve",
            "config.asgi:application",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            *([] if access_log else ["--no-access-log"]),
            "--ws-per-message-deflate",
            "false",
        ],
        cwd=root,
        env=environment(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz/live", timeout=1)
            return server
        except requests.RequestException:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("uvicorn did not start")


def wrk(
    path: str,
    *,
    connections: int,
    duration: float,
    script: str,
    env: dict,
    header: str = "",
    port: int = PORT,
) -> dict:
    """Run wrk against the server; returns the JSON line its script prints."""
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        *(["-H", header] if header else []),
        "-s",
        str(ROOT / "bench" / script),
        f"http://127.0.0.1:{port}{path}",
    ]
    run = {"API_BENCH_RUN": uuid.uuid4().hex[:12]}  # this run's Idempotency-Keys (api_mix.lua)
    output = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **run, **env}, check=True
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("WRK_JSON "))
    return json.loads(line.removeprefix("WRK_JSON "))


def server_cpu(server: subprocess.Popen) -> float:
    """CPU seconds (user + system) used so far by uvicorn's processes (the parent and its
    workers, read from /proc): what a request costs the server, whatever else runs on the box."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def busy_cpu() -> float:
    """CPU seconds the whole box has been busy (all processes, from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def connections_per_worker(port: int = PORT) -> list[int]:
    """How the open client connections are split between the uvicorn workers, most first (from
    ``ss``): a worker serves the connections it accepted, one request at a time."""
    lines = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    counts = Counter(re.search(r"pid=(\d+)", line).group(1) for line in lines if "pid=" in line)
    return sorted(counts.values(), reverse=True)


def measured(server, path, **kwargs) -> dict:
    """A wrk run, with the server's CPU per request during it, the rest of the box's
    (PostgreSQL, Redis, wrk and anything else running), and the connections' split between the
    workers halfway through."""
    before, box_before = server_cpu(server), busy_cpu()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(wrk, path, **kwargs)
        time.sleep(kwargs["duration"] / 2)
        split = connections_per_worker(kwargs.get("port", PORT))
        result = running.result()
    result["split"] = split
    requests_done = max(1, result["requests"])
    result["cpu_ms"] = (server_cpu(server) - before) / requests_done * 1000
    result["other_cpu_ms"] = (busy_cpu() - box_before) / requests_done * 1000 - result["cpu_ms"]
    return result


def show(label: str, result: dict) -> None:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()))
    server = (
        f"  server p50 {result['server_p50']:.1f} ms p95 {result['server_p95']:.1f} ms"
        if result["server_p50"] >= 0
        else ""
    )
    print(
        f"{label:<34}{result['rps']:>9,.0f} req/s  p50 {result['p50']:>6.1f} ms  "
        f"p95 {result['p95']:>6.1f} ms  p99 {result['p99']:>6.1f} ms{server}  "
        f"server CPU {result['cpu_ms']:.2f} ms/req, rest of the box "
        f"{result['other_cpu_ms']:.2f}  connections per worker "
        f"{'/'.join(map(str, result['split'])) or '?'}  [{statuses}]"
        + (f" errors {result['errors']}" if result["errors"] else "")
        + (f" replayed {result['replayed']}" if result.get("replayed") else "")
    )


def main():
    global DB_NAME, REDIS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=100, help="wrk connections")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument(
        "--http-concurrency", type=int, default=None, help="HTTP_CONCURRENCY (default: settings)"
    )
    parser.add_argument(
        "--keys",
        type=int,
        default=1000,
        help="API keys the connections use in turn (each has its own send budget, 100/min)",
    )
    parser.add_argument("--db", default=DB_NAME, help="this bench's own database (recreated)")
    parser.add_argument("--redis", default=REDIS, help="a Redis database for this bench")
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database")
    parser.add_argument(
        "--access-log", action="store_true", help="uvicorn's access log on (one line a request)"
    )
    parser.add_argument(
        "--shared-socket",
        action="store_true",
        help="plain uvicorn, its workers sharing one socket (before config.serve)",
    )
    parser.add_argument(
        "--beside",
        metavar="CHECKOUT",
        help="only the API mix, in rounds alternating with another checkout's code (the "
        "reference) served beside this one on the same database: same-session figures",
    )
    parser.add_argument("--rounds", type=int, default=6, help="with --beside")
    parser.add_argument(
        "--together",
        action="store_true",
        help="with --beside: both mixes at the same time, half the connections each (the box's "
        "drift then slows both alike; each one's rest of the box includes the other server)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="measure the reference and the API mix this many times, alternating which goes "
        "first, and judge by the medians (the share by each pair's own): on a box whose speed "
        "drifts from minute to minute, one run of each 30 s apart gave shares from 42 to 64%%",
    )
    args = parser.parse_args()
    DB_NAME, REDIS = args.db, args.redis
    if args.http_concurrency is not None:
        SERVER_ENV["HTTP_CONCURRENCY"] = str(args.http_concurrency)
    keys_file = ROOT / "var" / f"{DB_NAME}.keys"
    if not (args.reuse and keys_file.exists()):
        recreate_database()
        secrets, codes = seed(args.chats, args.keys)
        keys_file.write_text(
            "".join(f"key {k}\n" for k in secrets) + "".join(f"chat {c}\n" for c in codes)
        )
    if done := AutovacuumStandIn.catch_up(f"{PG}/{DB_NAME}"):
        print(f"the server's autovacuum is off; the bench did its work (bench/_autovacuum.py): "
              f"{len(done)} tables analyzed")  # fmt: skip
    print("load average before the runs: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(
        f"{'uvicorn' if args.shared_socket else 'config.serve'} --workers {args.workers}{'' if args.access_log else ' --no-access-log'}, "
        "HTTP_CONCURRENCY="
        f"{SERVER_ENV.get('HTTP_CONCURRENCY', 'default')}, {args.clients} connections, "
        f"{args.duration:g} s per run"
    )
    env = {"API_BENCH_FILE": str(keys_file)}
    if args.beside:
        beside(args, Path(args.beside).resolve(), env)
        return
    drop_queued_tasks()
    server = serve(args.workers, args.access_log, args.shared_socket)
    try:
        warm = {"connections": 10, "duration": 3, "env": env}
        wrk("/bench/json/", script="plain.lua", **warm)
        wrk("/", script="api_mix.lua", **warm)
        runs = {"connections": args.clients, "duration": args.duration, "env": env}
        pairs = []
        for pair in range(args.pairs):
            order = ("reference", "mix") if pair % 2 == 0 else ("mix", "reference")
            got = {}
            for which in order:
                got[which] = (
                    measured(server, "/bench/json/", script="plain.lua", **runs)
                    if which == "reference"
                    else measured(server, "/", script="api_mix.lua", **runs)
                )
            pairs.append(got)
        keyed = None
        if "api/bench-json" in (ROOT / "bench" / "api_reference.py").read_text():
            keyed = measured(
                server,
                "/api/bench-json/",
                script="plain.lua",
                header="Authorization: Bearer bench-reference",
                **runs,
            )
        alone = measured(server, "/", script="api_mix.lua", connections=1, duration=5, env=env)
        live = measured(server, "/healthz/live", script="plain.lua", **runs)
    finally:
        server.terminate()
        server.wait(timeout=30)
        drop_queued_tasks()
    if len(pairs) > 1:
        for number, pair in enumerate(pairs, 1):
            show(f"{number}. reference", pair["reference"])
            show(f"{number}. API mix", pair["mix"])
            print(
                f"{number}. API / reference: {pair['mix']['rps'] / pair['reference']['rps'] * 100:.0f}%"
            )
        print(f"medians of {len(pairs)} pairs:")
    reference = median_result([pair["reference"] for pair in pairs])
    mix = median_result([pair["mix"] for pair in pairs])
    show("reference Django JSON view", reference)
    if keyed is not None:
        show("reference, API-key path", keyed)
    show("API mix (GET chats / POST message)", mix)
    show("API mix, 1 connection alone", alone)
    show("/healthz/live", live)
    share = statistics.median(
        pair["mix"]["rps"] / pair["reference"]["rps"] * 100 if pair["reference"]["rps"] else 0
        for pair in pairs
    )
    non_2xx = sum(v for k, v in mix["statuses"].items() if not k.startswith("2"))
    print(f"API / reference: {share:.0f}% (target ≥ 60%)")
    if keyed is not None:
        # API-key calls skip the middleware a browser needs (config.asgi); the trivial view
        # served the same way is the stricter reference.
        print(
            f"API / reference on the API-key path: "
            f"{mix['rps'] / keyed['rps'] * 100 if keyed['rps'] else 0:.0f}%"
        )
    # On a shared box the wall-clock figures follow the load; the server's CPU per request
    # does not much: what the processes could serve on the cores they may use.
    cores = os.cpu_count() or 1
    print(
        f"server CPU per request: API mix {mix['cpu_ms']:.2f} ms, reference "
        f"{reference['cpu_ms']:.2f} ms (ratio {reference['cpu_ms'] / max(mix['cpu_ms'], 1e-9) * 100:.0f}%); "
        f"the uvicorn processes alone on {cores} cores: at most "
        f"{cores * 1000 / max(mix['cpu_ms'], 1e-9):,.0f} API req/s "
        "(PostgreSQL, Redis and wrk need their share too)"
    )
    checks = [
        ("API ≥ 500 req/s", mix["rps"] >= 500),
        ("client p95 < 250 ms", mix["p95"] < 250),
        ("server p50 < 5 ms", 0 <= mix["server_p50"] < 5),
        ("≥ 60% of the reference", share >= 60),
        ("/healthz/live ≥ 3,000 req/s", live["rps"] >= 3000),
        ("no API errors", non_2xx == 0 and not mix["errors"]),
    ]
    for label, ok in checks:
        print(f"  {label:<30}{'met' if ok else 'NOT met'}")


def median_result(results: list[dict]) -> dict:
    """One wrk result standing for several runs of the same thing: each figure's median, the
    statuses and errors of all of them."""
    if len(results) == 1:
        return results[0]
    figures = ("rps", "p50", "p95", "p99", "server_p50", "server_p95", "cpu_ms", "other_cpu_ms")
    merged = {name: statistics.median(r[name] for r in results) for name in figures}
    merged["statuses"] = dict(sum((Counter(r["statuses"]) for r in results), Counter()))
    merged["errors"] = sum(r["errors"] for r in results)
    merged["replayed"] = sum(r.get("replayed", 0) for r in results)
    merged["split"] = results[0]["split"]
    return merged


def beside(args, other: Path, env: dict) -> None:
    """The API mix, ``--rounds`` times for each of this checkout and ``other``, one run after the
    other (which goes first alternates), both servers up the whole time: on a box whose speed
    drifts from minute to minute, neighbouring runs are the fair comparison."""
    ports = {"this checkout": PORT, str(other): PORT + 1}
    servers = {
        label: serve(args.workers, args.access_log, args.shared_socket, root, port)
        for (label, port), root in zip(ports.items(), (ROOT, other), strict=True)
    }
    results: dict[str, list[dict]] = {label: [] for label in servers}
    try:
        for port in ports.values():
            wrk("/", script="api_mix.lua", connections=10, duration=3, env=env, port=port)
        clients = args.clients // 2 if args.together else args.clients
        runs = {"connections": clients, "duration": args.duration, "env": env}

        def run(label: str) -> dict:
            return measured(servers[label], "/", script="api_mix.lua", port=ports[label], **runs)

        for round_ in range(args.rounds):
            order = list(ports) if round_ % 2 == 0 else list(reversed(ports))
            if args.together:
                with ThreadPoolExecutor(len(order)) as pool:
                    got = dict(zip(order, pool.map(run, order), strict=True))
            else:
                got = {label: run(label) for label in order}
            for label, result in got.items():
                results[label].append(result)
                show(f"{round_ + 1}. {label}"[:33], result)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
        drop_queued_tasks()
    for label, rounds in results.items():
        median = median_result(rounds)
        print(
            f"median of {len(rounds)}, {label}: {median['rps']:,.0f} req/s, "
            f"p95 {median['p95']:.0f} ms, server p50 {median['server_p50']:.1f} ms, "
            f"server CPU {median['cpu_ms']:.2f} ms/req"
        )
    mine, theirs = results.values()
    ratios = sorted(a["rps"] / b["rps"] for a, b in zip(mine, theirs, strict=True))
    print(
        "this checkout / the other, req/s round by round: "
        + ", ".join(f"{ratio:.0%}" for ratio in ratios)
        + f" (median {statistics.median(ratios):.0%})"
    )


if __name__ == "__main__":
    main()
