"""Webhook ingest benchmark: signed Cloud API deliveries against the real ASGI server.

    .venv/bin/python bench/webhook_ingest.py [--requests N] [--concurrency C] [--web-workers W]
        [--mix status|new-customers|both] [--while-draining [--drain-seconds S] [--rate R]]
        [--provider cloud_api|evolution]

``--provider evolution``: the same traffic as a WhatsApp Web number's Evolution API webhooks
(``messages.upsert`` and ``messages.update`` bodies, the number's secret in the URL path).

1. Creates/migrates the PostgreSQL database (``DATABASE_URL``, default
   ``postgres://postgres@127.0.0.1:5432/porfin_bench``) and one number with 3,000 outbound
   campaign messages spread over the chats of the 500 customers who also write in.
2. Starts ``python -m config.serve config.asgi:application`` (W workers, production settings) with
   ``TASK_RUNNER=django_q`` and ``REDIS_URL``, so a webhook only stores its row and queues a task.
3. For each mix, posts N signed, realistic bodies over C keep-alive connections, and reports
   accepted webhooks/s and ack latency p50/p99. ``status``: 1 in 4 an inbound message of the
   500 returning customers, the rest status batches of 1-3 statuses, as a number's traffic
   looks. ``new-customers``: every delivery a first message of a new customer (a new contact
   and chat each: the drain's heaviest case).
4. Starts one ``Q_CLUSTER_NAME=porfin-inbound manage.py qcluster`` and times the backlog until
   every event is processed. The campaign follow-ups this records (``kernel.outbox``) are the
   default cluster's work and are only counted.
5. ``--while-draining``: posts for S seconds while one inbound cluster drains at the same time
   (the real situation) and reports the ack tail and the backlog left when posting stopped.
   ``--poster python`` (the default) posts with this script's asyncio client, about a core of
   its own on this box; ``--poster wrk`` (Debian's ``wrk``) posts deliveries signed beforehand
   and takes a sliver of a core, as Meta's servers take none of ours: both saturate the box.
   ``--rate R`` (python poster) posts R deliveries/s instead, each due at its time whether or
   not earlier ones were answered, its latency counted from then: the tail a number sending R
   a second sees while the drain keeps up (or not: the backlog says).
6. When the server's autovacuum is off (this box's is), the bench does its work on its own
   database, with PostgreSQL's default rules (``bench/_autovacuum.py``), as a production server
   would; ``--no-autovacuum-stand-in`` measures without it (every table planned as if empty).

Targets (issues 3, 21): >= 1,000 webhooks/s accepted with p99 < 50 ms (< 20 ms while draining);
backlog drained >= 500 events/s (status mix), >= 1,000 events/s (new customers).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._autovacuum import AutovacuumStandIn  # noqa: E402
from bench._ownership import claim_redis  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/porfin_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
# Bench-only credentials (never used outside this throwaway database).
FERNET_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"porfin-bench").digest()).decode()
APP_SECRET = "bench-app-secret"
PNID = f"99{int(time.time())}"  # a new number per run
WABA = "990000000000"
CUSTOMERS = 500
OUTBOUND = 3000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--provider", choices=("cloud_api", "evolution"), default="cloud_api")
    parser.add_argument(
        "--mix",
        choices=("status", "new-customers", "both"),
        default="both",
        help="status: 1 in 4 an inbound message of 500 returning customers, the rest statuses; "
        "new-customers: every delivery a first message (a new contact and chat each)",
    )
    parser.add_argument(
        "--poster",
        choices=("python", "wrk"),
        default="python",
        help="who posts during --while-draining: this script's asyncio client (about a core "
        "of its own) or wrk (Debian's; bodies signed beforehand, a sliver of a core)",
    )
    parser.add_argument(
        "--while-draining",
        action="store_true",
        help="also measure accept latency while one inbound cluster drains (issue 21 item 3)",
    )
    parser.add_argument("--drain-seconds", type=float, default=60.0)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="with --while-draining, first post the same window with no cluster running: the "
        "ack tail this box gives at that load when nothing drains (the bar's floor here)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="with --while-draining and the python poster: post at this many deliveries/s "
        "(latency counted from each one's due time) instead of as fast as answers come",
    )
    parser.add_argument(
        "--no-autovacuum-stand-in",
        dest="autovacuum_stand_in",
        action="store_false",
        help="when the server's autovacuum is off, do not do its work on the bench's database "
        "(bench/_autovacuum.py): every table is then planned as if empty",
    )
    args = parser.parse_args()
    if args.rate is not None and (args.poster != "python" or args.rate <= 0):
        parser.error("--rate takes a positive number of deliveries/s, with --poster python")
    return args


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "EMAIL_URL": "consolemail://",  # production refuses to start without e-mail
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
        "FIELD_ENCRYPTION_KEY": FERNET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TASK_RUNNER": "django_q",
        "SANDBOX_ENABLED": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


# --- Setup ----------------------------------------------------------------------------------


def create_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(env: dict[str, str], provider: str = "cloud_api") -> tuple[str, list[str]]:
    """Migrate, reset the bench data, and return (webhook path, outbound wamids)."""
    create_database(env["DATABASE_URL"])
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.utils import timezone

    from accounts.models import Organization
    from inbox.models import Chat, Contact, Message
    from integrations.models import WhatsAppNumber

    # Only the bench's own Redis database (empty, or claimed by this bench before).
    claim_redis(env["REDIS_URL"], "webhook_ingest")
    # A fresh number per run (earlier runs' rows stay; nothing is deleted, so
    # no cascade reaches other apps' tables).
    organization, _ = Organization.objects.get_or_create(
        slug="bench-clinic", defaults={"name": "Bench Clinic"}
    )
    evolution = provider == "evolution"
    number = WhatsAppNumber.objects.create(
        organization=organization,
        phone_number_id=f"evolution:bench-{PNID}" if evolution else PNID,
        name="Bench",
        display_phone_number="+1 555 000 0001",
        waba_id="" if evolution else WABA,
        provider=provider,
        access_token="" if evolution else "bench-token",
        app_secret="" if evolution else APP_SECRET,
        evolution_instance=f"bench-{PNID}" if evolution else "",
    )
    # Outbound messages as a campaign leaves them: one or a few per customer, spread over the
    # same customers who write in (statuses for one chat would all queue on that chat's row).
    contacts = [
        Contact.objects.get_or_create(
            organization=organization, wa_id=wa_id, defaults={"phone": f"+{wa_id}"}
        )[0]
        for wa_id in map(customer_wa_id, range(CUSTOMERS))
    ]
    chats = Chat.objects.bulk_create(
        Chat(organization=organization, contact=contact, number=number) for contact in contacts
    )
    now = timezone.now()
    wamids = [f"wamid.bench-out-{i:06d}" for i in range(OUTBOUND)]
    Message.objects.bulk_create(
        Message(
            organization=organization,
            chat=chats[i % len(chats)],
            number=number,
            direction=Message.Direction.OUTBOUND,
            type=Message.Type.TEXT,
            text="Lembrete da sua consulta",
            wamid=wamid,
            status=Message.Status.SENT,
            sent_at=now,
            author_type=Message.Author.CAMPAIGN,
        )
        for i, wamid in enumerate(wamids)
    )
    if evolution:
        return f"/webhooks/evolution/{number.webhook_key}/{number.webhook_secret}/", wamids
    return f"/webhooks/whatsapp/{number.webhook_key}/", wamids


def customer_wa_id(index: int) -> str:
    return f"5511{9000000000 + index}"


def build_evolution_bodies(count: int, wamids: list[str]) -> list[bytes]:
    """Evolution API v2 webhooks: 1 in 4 a customer's ``messages.upsert``, the rest one
    ``messages.update`` (delivered, then read) each, as Evolution sends them."""
    import json

    rng = random.Random(7)
    now = int(time.time())
    bodies, next_status = [], 0
    progress = ["DELIVERY_ACK", "READ"]
    envelope = {
        "instance": f"bench-{PNID}",
        "destination": "http://127.0.0.1/webhooks/evolution/",
        "date_time": "2026-01-01T00:00:00.000Z",
        "sender": "15550000001@s.whatsapp.net",
        "server_url": "http://evolution:8080",
        "apikey": "BENCH-INSTANCE-TOKEN",
    }
    for i in range(count):
        if i % 4 == 0:
            wa_id = customer_wa_id(rng.randrange(CUSTOMERS))
            data = {
                "key": {
                    "remoteJid": f"{wa_id}@s.whatsapp.net",
                    "fromMe": False,
                    "id": f"3EB0BENCH{i:07d}{rng.getrandbits(32):08X}",
                },
                "pushName": f"Cliente {wa_id[-3:]}",
                "status": "DELIVERY_ACK",
                "message": {"conversation": rng.choice(["Olá!", "Quero remarcar", "Endereço?"])},
                "messageType": "conversation",
                "messageTimestamp": now,
                "instanceId": "bench",
                "source": "android",
            }
            body = {"event": "messages.upsert", "data": data, **envelope}
        else:
            wamid = wamids[next_status % len(wamids)]
            recipient = customer_wa_id(next_status % len(wamids) % CUSTOMERS)
            status = progress[(next_status // len(wamids)) % 2]
            next_status += 1
            data = {
                "messageId": f"bench-{i}",
                "keyId": wamid,
                "remoteJid": f"{recipient}@s.whatsapp.net",
                "fromMe": True,
                "participant": f"{recipient}@s.whatsapp.net",
                "status": status,
                "instanceId": "bench",
            }
            body = {"event": "messages.update", "data": data, **envelope}
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


def new_customer_wa_id(index: int) -> str:
    """A customer who never wrote before: unique to this run (the number is new per run)."""
    return f"77{PNID[-9:]}{index:07d}"


def build_new_customer_bodies(count: int, start: int = 0) -> list[bytes]:
    """Deliveries of first messages: each from a new customer (a new contact and chat each),
    as after a campaign to a bought list or an ad click-to-WhatsApp."""
    from integrations.whatsapp import payloads as wa

    rng = random.Random(11)
    now = int(time.time())
    bodies = []
    for i in range(start, start + count):
        wa_id = new_customer_wa_id(i)
        message = wa.build_inbound_message(
            wamid=f"wamid.bench-new-{PNID}-{i:07d}",
            from_wa_id=wa_id,
            message_type="text",
            content=wa.build_text(rng.choice(["Olá!", "Vi o anúncio", "Qual o preço?"])),
            timestamp=str(now),
        )
        change = wa.build_messages_change(
            phone_number_id=PNID,
            display_phone_number="15550000001",
            contacts=[wa.build_contact(wa_id=wa_id, profile_name=f"Novo {i}")],
            messages=[message],
        )
        bodies.append(wa.encode_webhook(wa.build_webhook(WABA, [change])))
    return bodies


def build_bodies(count: int, wamids: list[str], provider: str = "cloud_api") -> list[bytes]:
    if provider == "evolution":
        return build_evolution_bodies(count, wamids)
    from integrations.whatsapp import payloads as wa

    rng = random.Random(7)
    now = int(time.time())
    bodies, next_status = [], 0
    progress = ["sent", "delivered", "read"]
    for i in range(count):
        if i % 4 == 0:
            wa_id = customer_wa_id(rng.randrange(CUSTOMERS))
            message = wa.build_inbound_message(
                wamid=f"wamid.bench-in-{i:07d}-{rng.getrandbits(32):08x}",
                from_wa_id=wa_id,
                message_type="text",
                content=wa.build_text(rng.choice(["Olá!", "Quero remarcar", "Qual o endereço?"])),
                timestamp=str(now),
            )
            change = wa.build_messages_change(
                phone_number_id=PNID,
                display_phone_number="15550000001",
                contacts=[wa.build_contact(wa_id=wa_id, profile_name=f"Cliente {wa_id[-3:]}")],
                messages=[message],
            )
        else:
            statuses = []
            for _ in range(rng.choice((1, 1, 2, 3))):
                wamid = wamids[next_status % len(wamids)]
                recipient = customer_wa_id(next_status % len(wamids) % CUSTOMERS)
                status = progress[(next_status // len(wamids)) % 3]
                next_status += 1
                pricing = wa.build_pricing(
                    category="utility", pricing_type="regular", billable=True
                )
                statuses.append(
                    wa.build_status(
                        wamid=wamid,
                        status=status,
                        recipient_id=recipient,
                        timestamp=str(now),
                        pricing=None if status == "read" else pricing,
                    )
                )
            change = wa.build_messages_change(
                phone_number_id=PNID, display_phone_number="15550000001", statuses=statuses
            )
        bodies.append(wa.encode_webhook(wa.build_webhook(WABA, [change])))
    return bodies


# --- Processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 (kept open for the child's lifetime)
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


# --- Client -----------------------------------------------------------------------------------


async def post_all(
    port: int, path: str, bodies: list[bytes], concurrency: int, rate: float | None = None
):
    """POST every body over ``concurrency`` keep-alive HTTP/1.1 connections; returns
    (latencies in seconds of 200 answers, other statuses, wall seconds). Cloud API bodies are
    signed; Evolution's carry their number's secret in ``path``.

    ``rate`` (deliveries/s): the i-th body is due at ``i / rate`` s, as a sender that does not
    wait for our answers would post it, and its latency counts from then, so a slow answer
    also counts against the bodies queued behind it. Without it, each connection posts its
    next body as soon as the last is answered (the box's saturation)."""
    from integrations.whatsapp.signature import sign

    evolution = path.startswith("/webhooks/evolution/")
    requests_bytes = [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + (
                "User-Agent: axios/1.7.7\r\n"
                if evolution
                else "X-Forwarded-Proto: https\r\nUser-Agent: facebookexternalua\r\n"
                f"X-Hub-Signature-256: {sign(body, APP_SECRET)}\r\n"
            )
            + f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(requests_bytes):
        queue.put_nowait(item)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    begun = time.perf_counter() + 0.2  # every connection is open by then

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not queue.empty():
            index, request = queue.get_nowait()
            started = time.perf_counter()
            if rate:
                started = begun + index / rate
                await asyncio.sleep(max(0.0, started - time.perf_counter()))
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            elapsed = time.perf_counter() - started
            status = status_line.split(b" ", 2)[1].decode() if status_line else "closed"
            if status == "200":
                latencies.append(elapsed)
            else:
                failures[status] = failures.get(status, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, failures, time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# --- Main -------------------------------------------------------------------------------------


MIXES = ("status", "new-customers")


def run_mix(args, env, mix: str, path: str, wamids: list[str]) -> list[tuple[str, str, str]]:
    """Accept, then drain, one mix; then (``--while-draining``) accept again while one inbound
    cluster drains the same kind of traffic. Returns the report's rows."""
    logs = ROOT / "var"
    bodies = (
        build_bodies(args.requests, wamids, args.provider)
        if mix == "status"
        else build_new_customer_bodies(args.requests)
    )
    statuses = sum(body.count(b'"status":') for body in bodies)
    if args.provider == "evolution":
        statuses = sum(body.count(b'"keyId":') for body in bodies)
    inbound = sum(body.count(b'"messages":') for body in bodies)
    print(
        f"[{mix}] {len(bodies)} bodies: {inbound} inbound messages, {statuses} statuses; "
        f"avg {statistics.mean(map(len, bodies)):.0f} bytes; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    from django.db.models import Max, Min

    from integrations.models import WebhookEvent
    from kernel.models import OutboxEntry

    port = free_port()
    server = start_server(args, env, port, logs)
    try:
        asyncio.run(post_all(port, path, bodies[:50], 4))  # warm-up (a few duplicates)
        first_id = WebhookEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        latencies, failures, wall = asyncio.run(post_all(port, path, bodies, args.concurrency))
    finally:
        stop(server)
    accepted = len(latencies)
    events = WebhookEvent.objects.filter(pk__gt=first_id)
    total = events.count()
    outbox_before = OutboxEntry.objects.count()
    cluster_env = {**env, "Q_CLUSTER_NAME": "porfin-inbound"}
    tasks_queued = queue_size(env, "porfin-inbound")
    runs_before = drain_runs()
    cpu_before = children_cpu()
    started = time.perf_counter()
    worker = start(
        [sys.executable, "manage.py", "qcluster"], cluster_env, logs / "bench-qcluster.log"
    )
    try:
        wait_drained(events, worker, total)
        drain_wall = time.perf_counter() - started
    finally:
        stop(worker)
    cluster_cpu = children_cpu() - cpu_before
    span = events.aggregate(first=Min("processed_at"), last=Max("processed_at"))
    busy = (span["last"] - span["first"]).total_seconds() or drain_wall
    errors = events.exclude(error="").count()
    rows = [
        (f"[{mix}] webhooks posted", f"{len(bodies)}", ""),
        ("accepted (200)", f"{accepted}", f"other: {failures or 'none'}"),
        ("accepted webhooks/s", f"{accepted / wall:,.0f}", ">= 1,000"),
        ("ack latency p50", f"{percentile(latencies, 0.50) * 1000:.1f} ms", "<= 250 ms (Meta)"),
        ("ack latency p99", f"{percentile(latencies, 0.99) * 1000:.1f} ms", "< 50 ms"),
        ("ack latency max", f"{max(latencies) * 1000:.1f} ms", "< 1% over 1 s (Meta)"),
        ("events processed", f"{total - events.filter(processed_at__isnull=True).count()}", ""),
        ("events with an error", f"{errors}", "0"),
        ("drain, 1 inbound cluster", f"{drain_wall:.1f} s incl. startup", ""),
        (
            "drain events/s",
            f"{total / busy:,.0f}",
            ">= 1,000 (new customers)" if mix == "new-customers" else ">= 500",
        ),
        ("drain events/s incl. startup", f"{total / drain_wall:,.0f}", ""),
        (
            "cluster CPU per event",
            f"{cluster_cpu / total * 1000:.2f} ms",
            "incl. start-up; load-independent",
        ),
        events_per_task(total, tasks_queued, drain_runs() - runs_before),
        (
            "follow-ups recorded (outbox)",
            f"{OutboxEntry.objects.count() - outbox_before}",
            "run by the default cluster",
        ),
    ]
    rows += inprocess_drain(mix, path, wamids, args.provider)
    if args.while_draining:
        if args.floor:
            rows += accept_while_draining(args, env, mix, path, wamids, logs, drain=False)
        rows += accept_while_draining(args, env, mix, path, wamids, logs)
    return rows


def drain_runs() -> int:
    """Drain tasks run so far (``integrations.services.DRAIN_RUNS``; 0 before the drain)."""
    from django.core.cache import cache

    from integrations import services

    return int(cache.get(getattr(services, "DRAIN_RUNS", "-"), 0) or 0)


def events_per_task(total: int, queued: int, runs: int) -> tuple[str, str, str]:
    if runs:  # the drain: tasks that claim deliveries themselves
        return ("events per inbound task", f"{total / runs:.1f}", f"{runs} drain tasks run")
    return ("events per inbound task", f"{total / max(1, queued):.1f}", f"{queued} tasks")


def inprocess_drain(mix, path, wamids, provider, count: int = 600) -> list[tuple[str, str, str]]:
    """Statements and Python CPU per event of the processing itself: ``count`` more deliveries
    of the mix stored, then processed here, in this process (what a worker runs, without the
    task runner), with every statement counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations import services
    from integrations.models import WebhookEvent

    key = path.rstrip("/").rsplit("/", 1)[-1]
    number = services.webhook_number(key, fresh=True)
    bodies = (
        build_bodies(count, wamids, provider)
        if mix == "status"
        else build_new_customer_bodies(count, start=10_000_000)
    )
    WebhookEvent.objects.bulk_create(
        WebhookEvent(**services.webhook_event_fields(number=number, body=body, headers={}))
        for body in bodies
    )
    drain = getattr(services, "webhook_events_drain", None)
    pending = list(
        WebhookEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True)
    )
    cpu, wall = time.process_time(), time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        if drain is not None:
            drain(seconds=3600)
        else:  # before the drain: tasks of the receiver's size
            services.webhook_events_process(pending)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = len(pending)
    return [
        (f"[{mix}] in-process, {n} events", f"{n / wall:,.0f} events/s", "one process, no cluster"),
        ("  queries per event", f"{len(queries) / n:.2f}", "<= 4"),
        ("  Python CPU per event", f"{cpu / n * 1000:.2f} ms", "this process only"),
    ]


def accept_while_draining(
    args, env, mix, path, wamids, logs, drain: bool = True
) -> list[tuple[str, str, str]]:
    """The real situation (issue 21 item 3): webhooks accepted while one inbound cluster drains
    on the same box. Posts for ``--drain-seconds`` at the same concurrency, the cluster running
    from the start; reports the ack tail and how far the drain kept up. ``drain=False``: the
    same posting with no cluster (``--floor``); its backlog is drained afterwards, unmeasured,
    so the next window starts with no backlog."""
    from integrations.models import WebhookEvent

    first_id = WebhookEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    cluster = [
        [sys.executable, "manage.py", "qcluster"],
        {**env, "Q_CLUSTER_NAME": "porfin-inbound"},
    ]
    worker = start(*cluster, logs / "bench-qcluster-live.log") if drain else None
    port = free_port()
    server = start_server(args, env, port, logs)
    try:
        time.sleep(2.0)  # the cluster's workers start
        poster = wrk_post if args.poster == "wrk" else python_post
        posted, p50, p99, failures = poster(args, port, path, mix, wamids, args.requests)
        events = WebhookEvent.objects.filter(pk__gt=first_id)
        backlog = events.filter(processed_at__isnull=True).count()
        stop(server)
        if worker is None:
            worker = start(*cluster, logs / "bench-qcluster-floor.log")
        wait_drained(events, worker, events.count())
    finally:
        stop(server)
        if worker is not None:
            stop(worker)
    accepted = posted - sum(failures.values())
    title = "accept while draining" if drain else "accept, nothing draining (floor)"
    return [
        (f"[{mix}] {title} ({args.poster}{f', {args.rate:,.0f}/s paced' if args.rate else ''})", f"{posted} posted", f"{args.drain_seconds:.0f} s"),
        ("  accepted (200)", f"{accepted}", f"other: {failures or 'none'}"),
        ("  accepted webhooks/s", f"{accepted / args.drain_seconds:,.0f}", ""),
        ("  ack latency p50", f"{p50:.1f} ms", ""),
        ("  ack latency p99", f"{p99:.1f} ms", "< 20 ms" if drain else "what this box allows"),
        ("  backlog when posting stopped", f"{backlog}", "small: the drain keeps up" if drain else "nothing drained"),
    ]  # fmt: skip


def python_post(args, port: int, path: str, mix: str, wamids: list[str], start: int):
    """Post for ``--drain-seconds`` with this script's asyncio client, in rounds of
    ``--requests`` new deliveries numbered from ``start``. Returns (posted, p50 ms, p99 ms,
    non-200 statuses)."""
    count = args.requests
    latencies, failures, posted = [], {}, 0
    if args.rate:  # paced: every delivery of the window built first, so none waits for that
        count = int(args.rate * args.drain_seconds)
    deadline = time.monotonic() + args.drain_seconds
    while time.monotonic() < deadline:
        batch = (
            build_bodies(count, wamids, args.provider)
            if mix == "status"
            else build_new_customer_bodies(count, start=start + posted)
        )
        got, failed, _wall = asyncio.run(post_all(port, path, batch, args.concurrency, args.rate))
        latencies += got
        for key, value in failed.items():
            failures[key] = failures.get(key, 0) + value
        posted += len(batch)
    p50, p99 = (percentile(latencies, q) * 1000 for q in (0.50, 0.99))
    return posted, p50, p99, failures


def wrk_post(args, port: int, path: str, mix: str, wamids: list[str], start: int):
    """Post for ``--drain-seconds`` with wrk over ``--concurrency`` connections, each delivery
    new and signed beforehand (``bench/webhook_post.lua``): the load generator takes a sliver
    of a core, as Meta's servers take none of ours. Returns (posted, p50 ms, p99 ms, non-200
    statuses)."""
    import json

    from integrations.whatsapp.signature import sign

    count = int(args.drain_seconds * 9000)  # more than the box accepts in that time
    bodies = (
        build_bodies(count, wamids, args.provider)
        if mix == "status"
        else build_new_customer_bodies(count, start=start)
    )
    feed = ROOT / "var" / "bench-webhook-post.txt"
    evolution = path.startswith("/webhooks/evolution/")
    with feed.open("wb") as out:
        out.write(path.encode() + b"\n")
        for body in bodies:
            signature = b"-" if evolution else sign(body, APP_SECRET).encode()
            assert b"\n" not in body  # one line each (the signature covers these bytes)
            out.write(signature + b"\t" + body + b"\n")
    del bodies
    threads = 2
    try:
        output = subprocess.run(
            [
                "wrk", f"-t{threads}", f"-c{args.concurrency}", f"-d{args.drain_seconds:g}s",
                "--timeout", "10s", "-s", str(ROOT / "bench" / "webhook_post.lua"),
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True, text=True, check=True,
            env={**os.environ, "WEBHOOK_BENCH_FILE": str(feed), "WEBHOOK_BENCH_THREADS": str(threads)},
        ).stdout  # fmt: skip
    finally:
        feed.unlink(missing_ok=True)
    result = json.loads(next(x for x in output.splitlines() if x.startswith("WRK_JSON "))[9:])
    if result["repeats"]:
        print(f"note: wrk ran out of new deliveries and repeated some ({result['repeats']})")
    failures = {k: v for k, v in result["statuses"].items() if k != "200"}
    if result["errors"]:
        failures["socket errors"] = result["errors"]
    return result["requests"], result["p50"], result["p99"], failures


def start_server(args, env, port: int, logs: Path) -> subprocess.Popen:
    server = start(
        [
            sys.executable, "-m", "config.serve", "config.asgi:application",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(args.web_workers), "--log-level", "warning", "--no-access-log",
        ],
        env,
        logs / "bench-webhook-server.log",
    )  # fmt: skip
    wait_http(port)
    time.sleep(1.0)  # let every worker finish importing
    return server


def children_cpu() -> float:
    """CPU seconds of the child processes waited for so far (a stopped cluster and its workers)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def queue_size(env: dict[str, str], cluster: str) -> int:
    import redis

    return redis.Redis.from_url(env["REDIS_URL"]).llen(f"django_q:{cluster}:q")


def wait_drained(events, worker: subprocess.Popen, total: int) -> None:
    deadline = time.monotonic() + max(120, total / 50)
    while events.filter(processed_at__isnull=True).exists():
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError("the backlog was not drained; see var/bench-qcluster*.log")
        time.sleep(0.2)


def main() -> None:
    args = parse_args()
    env = environment()
    (ROOT / "var").mkdir(exist_ok=True)
    print(f"Preparing {env['DATABASE_URL']} ...", flush=True)
    path, wamids = prepare(env, args.provider)
    stand_in = AutovacuumStandIn.start(env["DATABASE_URL"]) if args.autovacuum_stand_in else None
    mixes = MIXES if args.mix == "both" else (args.mix,)
    if args.provider == "evolution":
        mixes = ("status",)  # the new-customer mix is built as Cloud API deliveries
    rows = []
    for mix in mixes:
        rows += run_mix(args, env, mix, path, wamids)
    print()
    print(f"Webhook ingest ({args.provider}) — {args.concurrency} connections, {args.web_workers} uvicorn workers, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>22}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>22}  {target}")
    if stand_in is not None:
        stand_in.stop()
        print(
            "The server's autovacuum is off: the bench did its work on its own database "
            f"(bench/_autovacuum.py): {'; '.join(stand_in.runs) or 'nothing was due'}."
        )
    elif not args.autovacuum_stand_in:
        print("No autovacuum: tables planned without statistics (--no-autovacuum-stand-in).")


if __name__ == "__main__":
    main()
