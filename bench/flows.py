"""Flows at load: 1,000 concurrent runs driven by sandbox customers, step overhead and completion.

    .venv/bin/python bench/flows.py [--database-url URL] [--redis-url URL] [--runs 1000]
                                    [--processes CORES] [--threads 2]

On a fresh PostgreSQL database (default ``postgres://postgres@127.0.0.1:5432/porfin_bench_flows``)
with Redis as cache and channel layer, a published five-step flow (keyword → welcome → reply
buttons → email question → thanks) is run by ``--runs`` customers at once: each writes "menu",
taps a button and answers the question, through the real inbound path
(``inbox.services.message_receive`` → conversation router → flow handler), in ``--processes``
worker processes of ``--threads`` threads, as inbound workers would. Flow steps run where the
tasks would (inline after commit); each process delivers its queued sends to a standalone
WhatsApp sandbox after its customers are done, so sends are excluded from the figures.

Customers go in three rounds (every one writes "menu", then every one taps, then every one
answers), so all ``--runs`` runs are open at once, waiting for answers, as in a busy hour.

Why one process per core and two threads each by default: the figure is the latency of one
step, timed with a wall clock. With more runnable threads than cores (the old 2 × 16 on two
cores) a step is mostly timed while it waits for the CPU (and, within a process, for the GIL)
behind the others, so it measures the queue, not the step. One process per core uses every
core; a second thread per process lets one step compute while another waits on PostgreSQL.
Throughput scales with processes (more cores, more workers), not with threads.

Reports the step overhead (each ``step_take`` and each answer's ``input_receive``: the step's
database work, its stored message and queued send) p50/p95/p99, and checks that every run
completed, every answer was captured, and no message was stored or sent twice.
Target: step overhead p95 < 20 ms; all runs complete.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from _assistants_setup import ROOT, setup_django

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/porfin_bench_flows"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def standalone_sandbox():
    """The WhatsApp sandbox in its own process, so its work does not share our interpreter."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "whatsapp_sandbox", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/_sandbox/", timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the sandbox did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drive(number_id: int, customers: list[int], threads: int, worker: int) -> dict:
    """One inbound worker process: its customers write, ``threads`` at a time; each flow step
    is timed. Sends are queued meanwhile and delivered after, so they are not in the figures
    (and do not compete with the steps for this interpreter)."""
    import django

    django.setup()  # a fresh interpreter (spawned): its own connections and pools
    from django.db import connection

    from flows import runtime
    from inbox import services as inbox_services
    from inbox.models import Message
    from integrations.models import WhatsAppNumber
    from integrations.whatsapp import payloads
    from kernel import tasks

    number = WhatsAppNumber.objects.get(pk=number_id)
    real_dispatch = tasks.dispatch
    queued: list[int] = []
    lock = threading.Lock()
    timings: list[float] = []

    def dispatch(func_path, *args, queue="default"):
        if func_path == "inbox.tasks.deliver_message":
            with lock:
                queued.append(args[0])
        else:
            real_dispatch(func_path, *args, queue=queue)

    tasks.dispatch = dispatch

    def timed(func):
        def wrapper(*a, **kw):
            started = time.perf_counter()
            try:
                return func(*a, **kw)
            finally:
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    timings.append(elapsed)

        return wrapper

    runtime.step_take = timed(runtime.step_take)
    runtime.input_receive = timed(runtime.input_receive)
    counter = iter(range(10**9))

    def receive(wa_id, message_type="text", content=None):
        with lock:
            n = next(counter)
        body = payloads.build_webhook(
            number.waba_id,
            [
                payloads.build_messages_change(
                    phone_number_id=number.phone_number_id,
                    display_phone_number="551140000000",
                    contacts=[payloads.build_contact(wa_id=wa_id, profile_name="Paciente Teste")],
                    messages=[
                        payloads.build_inbound_message(
                            wamid=f"wamid.bench.{worker}.{n}",
                            from_wa_id=wa_id,
                            message_type=message_type,
                            content=content,
                        )
                    ],
                )
            ],
        )
        return inbox_services.message_receive(
            number=number, inbound=payloads.parse_webhook(body)[0]
        )

    # Three rounds, each over every customer of this process: all write "menu", then all tap a
    # button, then all answer the question, so all their runs are open at once (waiting for an
    # answer) as in a busy hour, rather than one conversation finishing before the next starts.
    def write_menu(i: int) -> str | None:
        wa_id = f"5511970{i:06d}"
        try:
            receive(wa_id, content=payloads.build_text("menu"))
            return None
        except Exception as error:  # reported by the parent
            return f"{wa_id}: {error!r}"
        finally:
            connection.close()

    def tap_button(i: int) -> str | None:
        wa_id = f"5511970{i:06d}"
        try:
            menu = (
                Message.objects.filter(chat__contact__wa_id=wa_id, type="interactive")
                .values_list("content", flat=True)
                .first()
            )
            if menu is None:
                return f"{wa_id}: no menu"
            button = menu["interactive"]["action"]["buttons"][i % 2]["reply"]
            receive(
                wa_id,
                message_type="interactive",
                content=payloads.build_button_reply(reply_id=button["id"], title=button["title"]),
            )
            return None
        except Exception as error:
            return f"{wa_id}: {error!r}"
        finally:
            connection.close()

    def answer(i: int) -> str | None:
        wa_id = f"5511970{i:06d}"
        try:
            receive(wa_id, content=payloads.build_text(f"paciente{i}@example.com"))
            return None
        except Exception as error:
            return f"{wa_id}: {error!r}"
        finally:
            connection.close()

    problems = []
    with ThreadPoolExecutor(threads) as pool:
        for round_ in (write_menu, tap_button, answer):
            problems += [p for p in pool.map(round_, customers) if p]

    def deliver(message_id):
        try:
            tasks.run("inbox.tasks.deliver_message", message_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(deliver, queued))
    return {"timings": timings, "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--runs", type=int, default=1000)
    cores = os.cpu_count() or 2
    parser.add_argument(
        "--processes", type=int, default=cores, help="inbound worker processes (default: cores)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="threads per process (default 2; see the docstring)"
    )
    args = parser.parse_args()

    sandbox, sandbox_url = standalone_sandbox()
    setup_django(
        args.database_url,
        REDIS_URL=args.redis_url,
        TASK_RUNNER="inline",
        SANDBOX_URL=sandbox_url,
        SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9",
    )
    from django.core.cache import cache
    from django.db import connection

    from accounts.models import Organization
    from flows import services
    from flows.models import FlowRun, FlowRunStep
    from inbox.models import Contact, Message
    from integrations.models import WhatsAppNumber
    from tests.flows.helpers import five_nodes

    cache.clear()
    organization = Organization.objects.create(name="Clínica Fluxo", slug="clinica-fluxo")
    number = WhatsAppNumber.objects.create(
        organization=organization,
        name="Recepção",
        display_phone_number="+55 11 4000-0000",
        phone_number_id="990000000201",
        waba_id="102290129340398",
        access_token="bench-token",
        app_secret="bench-secret",
    )
    flow = services.flow_create(organization=organization, name="Agendamento", draft=five_nodes())
    services.flow_publish(flow=flow)

    connection.close()
    context = multiprocessing.get_context("spawn")  # fresh interpreters, environment inherited
    per_process = [list(range(k, args.runs, args.processes)) for k in range(args.processes)]
    print(
        f"{args.runs} customers at once: {args.processes} processes × {args.threads} threads"
        f" (load average {os.getloadavg()[0]:.2f})…",
        flush=True,
    )
    started = time.perf_counter()
    with context.Pool(args.processes) as pool:
        results = pool.starmap(
            drive,
            [(number.pk, customers, args.threads, k) for k, customers in enumerate(per_process)],
        )
    elapsed = time.perf_counter() - started
    timings = [t for result in results for t in result["timings"]]
    problems = [p for result in results for p in result["problems"]]

    runs = Counter(FlowRun.objects.values_list("status", flat=True))
    captured = Contact.objects.filter(organization=organization, email__endswith="@example.com")
    stored = Counter(
        Message.objects.filter(direction="out", chat__organization=organization).values_list(
            "chat_id", "text"
        )
    )
    sent = Message.objects.filter(direction="out", status__in=["sent", "delivered", "read"]).count()
    steps = FlowRunStep.objects.count()
    print(
        f"elapsed {elapsed:.1f} s for {args.runs * 3} customer messages ({steps} flow steps),"
        " then their sends"
    )
    print(
        f"step overhead (ms): p50 {statistics.median(timings):.1f}  p95 {percentile(timings, 0.95):.1f}"
        f"  p99 {percentile(timings, 0.99):.1f}  max {max(timings):.1f}  (n={len(timings)})"
    )
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"runs: {dict(runs)}; emails captured: {captured.count()}")
    print(
        f"outbound stored: {sum(stored.values())} (duplicates: {sum(v - 1 for v in stored.values())}),"
        f" sent to the sandbox: {sent}"
    )
    if problems:
        print(f"{len(problems)} customers failed, e.g. {problems[:3]}")
    ok = (
        percentile(timings, 0.95) < 20
        and runs.get("completed", 0) == args.runs
        and captured.count() == args.runs
        and max(stored.values()) == 1
    )
    print("PASS" if ok else "FAIL", "(target: step p95 < 20 ms, every run completed)")
    sandbox.terminate()
    sandbox.wait(10)


if __name__ == "__main__":
    main()
