"""AI auto-reply pipeline: overhead excluding model time, and 50 chats answered at once.

    .venv/bin/python bench/assistants_pipeline.py [--database-url URL] [--replies N] [--chats C]

Runs the real pipeline (``inbox.services.message_receive`` → ``message_received`` receiver →
reply claim → retrieval → the official ``openai`` client against the local OpenAI stub → reply
stored and delivered to a local WhatsApp sandbox; the stub and the sandbox run in a process of
their own, as the real ones are outside the worker, ``--fakes thread`` in this one) on a fresh
PostgreSQL database (default
``postgres://postgres@127.0.0.1:5432/porfin_bench_assistants``).

1. Overhead: N replies one after another with an instant stub model and inline tasks; per reply,
   wall time from the inbound message to the delivered answer minus the model call's own time.
   Target: p95 < 30 ms.
2. Concurrency: C chats receive a message at the same moment (stored in one batch by
   ``messages_receive``, as the inbound cluster's drain stores a backlog; ``--store single``: one
   by one from 8 threads); the stub model takes 1 s per answer; tasks run on the embedded thread runner
   (the ``ai`` queue), debounce as configured. Reports the time until every chat has its answer
   stored and sent. Target: C = 50 all answered in < 3 s (no head-of-line blocking).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from _assistants_setup import clinic, setup_django

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/porfin_bench_assistants"
KNOWLEDGE = (
    "A clínica funciona de segunda a sexta, das 8h às 19h.\n\n"
    "A limpeza custa R$ 180 e inclui flúor.\n\n"
    "Aceitamos Amil Dental, OdontoPrev e Bradesco Dental."
)


def _serve_fakes(conn) -> None:
    """In a process of its own: the OpenAI-compatible stub (one answering at once, one after
    1 s) and the WhatsApp sandbox, as the real model server and Meta are outside the AI worker.
    In the worker's own process they would take its interpreter lock while 50 replies run."""
    from integrations.whatsapp.sandbox import SandboxServer
    from tests.assistants.openai_stub import OpenAIStub

    instant, slow = OpenAIStub().start(), OpenAIStub().start()
    for stub in (instant, slow):
        stub.default = lambda body: {"content": "A limpeza custa R$ 180."}
    slow.delay = 1.0
    sandbox = SandboxServer().start()
    conn.send({"instant": instant.base_url, "slow": slow.base_url, "sandbox": sandbox.url})
    conn.recv()  # until the bench is done
    instant.stop(), slow.stop(), sandbox.stop()


class Fakes:
    """The stub model and the sandbox, in another process (``--fakes process``, the default)
    or in this one (``--fakes thread``, as the bench ran before)."""

    def __init__(self, where: str):
        self.where = where
        if where == "process":
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            self.conn, child = context.Pipe()
            self.process = context.Process(target=_serve_fakes, args=(child,), daemon=True)
            self.process.start()
            urls = self.conn.recv()
            self.model_url, self.slow_model_url, self.sandbox_url = (
                urls["instant"], urls["slow"], urls["sandbox"],
            )  # fmt: skip
            return
        from integrations.whatsapp.sandbox import SandboxServer
        from tests.assistants.openai_stub import OpenAIStub

        self.stub, self.sandbox = OpenAIStub().start(), SandboxServer().start()
        self.stub.default = lambda body: {"content": "A limpeza custa R$ 180."}
        self.model_url = self.slow_model_url = self.stub.base_url
        self.sandbox_url = self.sandbox.url

    def model_slow(self) -> str:
        """From now on the model takes 1 s per answer; returns the base URL to use."""
        if self.where == "thread":
            self.stub.delay = 1.0
        return self.slow_model_url

    def stop(self) -> None:
        if self.where == "process":
            self.conn.send("stop")
            self.process.join(5)
        else:
            self.stub.stop()
            self.sandbox.stop()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def make_chats(organization, number, count: int, prefix: str):
    from datetime import timedelta

    from django.utils import timezone

    from inbox.models import Chat, Contact

    chats = []
    for i in range(count):
        wa_id = f"55119{prefix}{i:05d}"
        contact = Contact.objects.create(
            organization=organization, wa_id=wa_id, phone=f"+{wa_id}", name=f"Paciente {i}"
        )
        chats.append(
            Chat.objects.create(
                organization=organization,
                contact=contact,
                number=number,
                ai_enabled=True,
                window_expires_at=timezone.now() + timedelta(hours=23),
            )
        )
    return chats


def inbound(number, wa_id: str, text: str, wamid: str):
    from integrations.whatsapp import payloads

    body = payloads.build_webhook(
        number.waba_id,
        [
            payloads.build_messages_change(
                phone_number_id=number.phone_number_id,
                display_phone_number="551140000000",
                contacts=[payloads.build_contact(wa_id=wa_id, profile_name="Paciente")],
                messages=[
                    payloads.build_inbound_message(
                        wamid=wamid,
                        from_wa_id=wa_id,
                        message_type="text",
                        content=payloads.build_text(text),
                    )
                ],
            )
        ],
    )
    return payloads.parse_webhook(body)[0]


def own(message, Chat) -> None:
    """Turn the AI back on and give the stored message to the assistant, as the router would
    have (its claim is part of storing the message, timed apart)."""
    from assistants.services import HANDLER

    Chat.objects.filter(pk=message.chat_id).update(ai_enabled=True)
    type(message).objects.filter(pk=message.pk).update(handled_by=HANDLER)
    message.chat.ai_enabled = True
    message.handled_by = HANDLER


class Timeline:
    """Per chat, when each stage of the burst happened (``time.time()``), recorded by wrapping
    the pipeline's own functions in this process: task started, claimed, model called and
    answered, reply delivered. With the messages' own ``created_at`` (stored, and the debounce's
    close) and the reply's (stored), it shows where a chat's seconds go."""

    def __init__(self):
        import threading

        self.events: dict[int, dict[str, float]] = {}
        self.local = threading.local()

    def mark(self, stage: str, chat_id: int | None = None) -> None:
        chat_id = chat_id if chat_id is not None else getattr(self.local, "chat_id", None)
        if chat_id is not None:
            self.events.setdefault(chat_id, {}).setdefault(stage, time.time())

    def install(self, services, inbox_services, provider_class) -> None:
        timeline = self
        run, claim, chat, deliver = (
            services.reply_run,
            services._claim,
            provider_class.chat,
            inbox_services.message_deliver,
        )

        def reply_run(chat_id, *args, **kwargs):
            timeline.local.chat_id = chat_id
            timeline.mark("task started")
            try:
                return run(chat_id, *args, **kwargs)
            finally:
                timeline.local.chat_id = None

        def _claim(chat_id, token, now):
            result = claim(chat_id, token, now)
            if result is not None:
                timeline.mark("claimed", chat_id)
            return result

        def model_chat(self, **kwargs):
            timeline.mark("model called")
            try:
                return chat(self, **kwargs)
            finally:
                timeline.mark("model answered")

        def message_deliver(message_id):
            try:
                return deliver(message_id)
            finally:
                timeline.mark("sent")

        services.reply_run, services._claim = reply_run, _claim
        provider_class.chat = model_chat
        services.inbox_services.message_deliver = message_deliver

    def report(self, stored: dict, answered: dict, debounce: float, started: float) -> None:
        """Stage times from the burst's start, p50/p95/max over the chats, in seconds."""
        rows: dict[str, list[float]] = {}
        gaps: dict[str, list[float]] = {}
        for chat_id, at in stored.items():
            stages = {"stored": at, "debounce closed": at + debounce}
            stages.update(self.events.get(chat_id, {}))
            if chat_id in answered:
                stages["reply stored"] = answered[chat_id]
            order = ["stored", "task started", "debounce closed", "claimed", "model called",
                     "model answered", "reply stored", "sent"]  # fmt: skip
            previous = None
            for stage in order:
                if stage not in stages:
                    continue
                rows.setdefault(stage, []).append(stages[stage] - started)
                if previous is not None:
                    gaps.setdefault(f"{previous} → {stage}", []).append(
                        stages[stage] - stages[previous]
                    )
                previous = stage
        print("   timeline from the burst's start (s; p50 / p95 / max over the chats):")
        for stage, values in rows.items():
            print(
                f"     {stage:<16} {statistics.median(values):5.2f} / "
                f"{percentile(values, 0.95):5.2f} / {max(values):5.2f}"
            )
        print("   stage to stage (s; p50 / p95 / max):")
        for gap, values in gaps.items():
            print(
                f"     {gap:<34} {statistics.median(values):5.2f} / "
                f"{percentile(values, 0.95):5.2f} / {max(values):5.2f}"
            )


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def count_queries(services, inbox_services, Chat, number, chat) -> dict:
    """Queries of one more reply (schedule → claim → context → model → store → send): all of
    them, the statements among them (transaction control apart), and how many of those are
    the inbox's delivery of the stored reply (``message_deliver``, from its claim on)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Chat.objects.filter(pk=chat.pk).update(ai_enabled=False)  # stored first, as timed above
    message = inbox_services.message_receive(
        number=number,
        inbound=inbound(number, chat.contact.wa_id, "Quanto custa a limpeza?", "wamid.q"),
    )
    own(message, Chat)
    connection.queries_log.clear()  # a full log (DEBUG=1) would make the count 0
    deliver, marks = inbox_services.message_deliver, []

    def message_deliver(message_id):  # the delivery's statements start here
        marks.append(len(queries))
        return deliver(message_id)

    inbox_services.message_deliver = message_deliver  # inline: its task and the AI's own call
    try:
        with CaptureQueriesContext(connection) as queries:
            services.reply_schedule(message=message)
    finally:
        inbox_services.message_deliver = deliver
    control = [q["sql"].startswith(TRANSACTION_CONTROL) for q in queries]
    statements = len(control) - sum(control)
    start = marks[0] if marks else len(control)
    delivery = len(control[start:]) - sum(control[start:])
    return {"all": len(queries), "statements": statements, "delivery": delivery}


def rss_mb() -> float:
    """This process's resident memory (Linux), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument(
        "--store",
        choices=("batch", "single"),
        default="batch",
        help="how the burst's messages are stored: as the inbound cluster does (one batch, "
        "``messages_receive``) or one by one from 8 threads (``message_receive``)",
    )
    parser.add_argument(
        "--fakes",
        choices=("process", "thread"),
        default="process",
        help="where the stub model and the WhatsApp sandbox run: another process (as the real "
        "ones are outside the worker) or threads of this one",
    )
    args = parser.parse_args()

    fakes = Fakes(args.fakes)
    setup_django(
        args.database_url,
        SANDBOX_URL=fakes.sandbox_url,
        SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9",
        TASK_RUNNER="inline",
    )
    import logging

    from django.conf import settings
    from django.db import transaction

    from assistants import services
    from assistants.models import AISettings, UsageRecord
    from inbox import services as inbox_services
    from inbox.models import Chat, Message
    from kernel import memo
    from kernel import tasks as task_runner

    logging.disable(logging.WARNING)
    organization, number, assistant = clinic("pipeline")
    ai_config = AISettings.objects.create(
        organization=organization, api_key="sk-stub", base_url=fakes.model_url
    )
    services.knowledge_add(assistant=assistant, kind="text", title="Guia", text=KNOWLEDGE)

    # 1. Overhead, sequential, instant model.
    settings.ASSISTANT_DEBOUNCE_SECONDS = 0
    chats = make_chats(organization, number, args.replies + 20, "1")
    overheads, totals, ingest, cpu = [], [], [], []
    last_usage = 0
    for i, chat in enumerate(chats):
        # The customer's message is stored with the AI off (the inbox's own work, timed apart),
        # then the AI pipeline runs: schedule, claim, context, retrieval, model, send, delivery.
        Chat.objects.filter(pk=chat.pk).update(ai_enabled=False)
        started = time.perf_counter()
        message = inbox_services.message_receive(
            number=number,
            inbound=inbound(number, chat.contact.wa_id, "Quanto custa a limpeza?", f"wamid.o{i}"),
        )
        stored = time.perf_counter()
        own(message, Chat)
        replied, cpu_started = time.perf_counter(), time.process_time()
        services.reply_schedule(message=message)
        done, cpu_done = time.perf_counter(), time.process_time()
        model_ms = sum(
            UsageRecord.objects.filter(assistant=assistant, pk__gt=last_usage).values_list(
                "latency_ms", flat=True
            )
        )
        last_usage = UsageRecord.objects.filter(assistant=assistant).latest("id").pk
        if i >= 20:  # warm-up excluded
            ingest.append((stored - started) * 1000)
            totals.append((done - replied) * 1000)
            overheads.append((done - replied) * 1000 - model_ms)
            cpu.append((cpu_done - cpu_started) * 1000)
    queries = count_queries(
        services, inbox_services, Chat, number, make_chats(organization, number, 1, "3")[0]
    )
    sent = Message.objects.filter(author_type="assistant", status="sent").count()
    print(f"1. AI pipeline overhead excluding model time, {len(overheads)} replies ({sent} sent):")
    print(
        f"   p50 {statistics.median(overheads):.1f} ms  p95 {percentile(overheads, 0.95):.1f} ms"
        f"  max {max(overheads):.1f} ms  (target p95 < 30 ms; includes the send to the local"
        f" sandbox; with model time p95 {percentile(totals, 0.95):.1f} ms)"
    )
    print(
        f"   per reply: {queries['all']} queries, {queries['statements']} statements without"
        f" transaction control: {queries['statements'] - queries['delivery']} the AI pipeline"
        f" (schedule, claim, context, reply stored with usage; target <= 10) +"
        f" {queries['delivery']} the inbox's delivery"
    )
    print(
        f"   process CPU p50 {statistics.median(cpu):.1f} ms"
        f" (load-independent-ish; the stub and sandbox servers"
        f" {'excluded: another process' if args.fakes == 'process' else 'included'})"
    )
    print(
        f"   inbound message storage before it (inbox, all receivers): p50"
        f" {statistics.median(ingest):.1f} ms  p95 {percentile(ingest, 0.95):.1f} ms"
    )

    from assistants import knowledge

    # (An older checkout, for a before/after run with this file copied into it, has no sizes.)
    sizes = getattr(knowledge, "cache_bytes", lambda: {})() or {
        "texts": 0, "vectors_own": 0, "vectors_shared": 0,
    }  # fmt: skip
    print(
        f"   memory: process RSS {rss_mb():.0f} MB (one AI worker: Django, the stubs and the"
        f" knowledge caches: texts {sizes['texts'] / 1024:.0f} kB, vectors"
        f" {sizes['vectors_own'] / 1024:.0f} kB own + {sizes['vectors_shared'] / 1024:.0f} kB"
        f" mapped from files shared by the workers)"
    )

    # 2. Concurrency, 1 s model, thread runner.
    settings.TASK_RUNNER = "thread"
    del settings.ASSISTANT_DEBOUNCE_SECONDS
    ai_config.base_url = fakes.model_slow()
    ai_config.save()
    memo.forget_all()
    chats = make_chats(organization, number, args.chats, "2")
    ids = [c.pk for c in chats]
    before = Message.objects.filter(author_type="assistant").count()
    from integrations.ai.client import ChatProvider

    timeline = Timeline()
    timeline.install(services, inbox_services, ChatProvider)
    started_wall = time.time()
    started = time.perf_counter()

    def receive(index_chat):
        index, chat = index_chat
        inbox_services.message_receive(
            number=number,
            inbound=inbound(number, chat.contact.wa_id, "Vocês aceitam Amil?", f"wamid.c{index}"),
        )

    if args.store == "batch":  # as a drain task stores a backlog: one transaction per batch
        with transaction.atomic():
            inbox_services.messages_receive(
                number=number,
                inbounds=[
                    inbound(number, chat.contact.wa_id, "Vocês aceitam Amil?", f"wamid.c{index}")
                    for index, chat in enumerate(chats)
                ],
            )
    else:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(receive, enumerate(chats)))
    received = time.perf_counter() - started
    answered_at = sent_at = None
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and sent_at is None:
        replies = Message.objects.filter(author_type="assistant", chat_id__in=ids)
        if answered_at is None and replies.count() >= len(ids):
            answered_at = time.perf_counter() - started
        if replies.filter(status="sent").count() >= len(ids):
            sent_at = time.perf_counter() - started
        time.sleep(0.02)
    replies = Message.objects.filter(author_type="assistant").count() - before
    per_chat = (
        Message.objects.filter(author_type="assistant", chat_id__in=ids)
        .values("chat_id")
        .distinct()
        .count()
    )
    latencies, stored_at, answered_at_by_chat = [], {}, {}
    for chat_id in ids:
        asked = Message.objects.filter(chat_id=chat_id, direction="in").latest("id")
        answer = Message.objects.filter(chat_id=chat_id, author_type="assistant").first()
        stored_at[chat_id] = asked.created_at.timestamp()
        if answer is not None:
            answered_at_by_chat[chat_id] = answer.created_at.timestamp()
            latencies.append((answer.created_at - asked.created_at).total_seconds())
    print(
        f"2. {len(ids)} chats at once, stub model 1 s ({args.fakes} fakes),"
        f" debounce {services.debounce_seconds():.1f} s,"
        f" ai queue threads {task_runner.QUEUES['ai']}:"
    )
    print(
        f"   messages stored ({args.store}) in {received:.2f} s; all answered in "
        f"{answered_at if answered_at is None else round(answered_at, 2)} s, all sent in "
        f"{sent_at if sent_at is None else round(sent_at, 2)} s; {replies} replies for "
        f"{per_chat} chats (target < 3 s, one reply each)"
    )
    if latencies:
        print(
            f"   per chat, customer message stored → answer stored: p50"
            f" {statistics.median(latencies):.2f} s  p95 {percentile(latencies, 0.95):.2f} s"
            f"  max {max(latencies):.2f} s"
        )
    timeline.report(stored_at, answered_at_by_chat, services.debounce_seconds(), started_wall)
    print(f"   memory: process RSS {rss_mb():.0f} MB after the burst")
    fakes.stop()


if __name__ == "__main__":
    main()
