"""Conversation-router overhead per inbound message, on PostgreSQL.

    .venv/bin/python bench/router.py [--messages 2000] [--database-url postgres://.../porfin_bench_router]

Stores customer messages through the real inbound service (``inbox.services.message_receive``,
in a transaction per message, as a worker batch does) with every handler of the product
registered — consent (10), CSAT (20), daily-question answers (30), flows (40), bookings (50) and
the assistant (90) — on an organization where each of them has something to look at: an
assistant answering the number with the AI on in half the chats, a published flow with a
keyword trigger, the booking keywords, a daily-question program. The message mix is what a
clinic's inbox sees: mostly ordinary text (which every handler declines but the assistant, in
AI chats), some "menu"/"agendar" keywords and a few STOPs.

Prints, per message, the router's own cost (every handler's ``accepts`` and the claim: what the
router adds), the time inside ``inbox.router.route`` including the owner's ``handle`` (work the
listeners did before the router too) and the whole ``message_receive``, p50/p95/p99 in ms.
Target (issue 14): the router adds < 2 ms p95.

Uses its own database (dropped and created) and no Redis.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time

from _assistants_setup import clinic, setup_django
from assistants_pipeline import inbound

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/porfin_bench_router"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    setup_django(args.database_url, TASK_RUNNER="inline", ASSISTANT_DEBOUNCE_SECONDS="3600")

    from unittest import mock

    from django.db import transaction

    from campaigns.models import DripProgram
    from flows import services as flow_services
    from flows import templates_library
    from inbox import router
    from inbox import services as inbox_services
    from inbox.models import Chat
    from kernel import tasks

    organization, number, _assistant = clinic("router")
    DripProgram.objects.create(
        organization=organization,
        name="Pergunta do dia",
        kind=DripProgram.Kind.QUESTION_OF_THE_DAY,
        number=number,
    )
    flow = templates_library.flow_from_template(
        organization=organization, key="welcome_menu", language="pt-br"
    )
    flow.draft["nodes"][0]["props"]["keywords"] = "menu"
    flow.save(update_fields=["draft"])
    flow_services.flow_publish(flow=flow)

    timings: list[float] = []
    overheads: list[float] = []
    in_handle = [0.0]
    real_route = router.route

    def timed(handle):
        def run(inbound):
            started = time.perf_counter()
            try:
                return handle(inbound)
            finally:
                in_handle[0] += time.perf_counter() - started

        return run

    # The owners' own work (a reply job, a flow's next message) was done before the router
    # too; what the router adds is asking every handler and claiming the message.
    for handler in router.handlers():
        router.register(dataclasses.replace(handler, handle=timed(handler.handle)))

    def timed_route(inbound):
        in_handle[0] = 0.0
        started = time.perf_counter()
        try:
            return real_route(inbound)
        finally:
            elapsed = time.perf_counter() - started
            timings.append(elapsed * 1000)
            overheads.append((elapsed - in_handle[0]) * 1000)

    texts = ["Bom dia, quanto custa a limpeza?", "Vocês abrem sábado?", "ok, obrigado"] * 6
    texts += ["menu", "agendar", "STOP"]
    rng = random.Random(14)
    wa_ids = [f"5511{9_0000_0000 + i}" for i in range(args.customers)]
    totals: list[float] = []
    owners: dict[str, int] = {}
    # Tasks are what handlers queue after commit (replies, sends): not the router's cost.
    with (
        mock.patch.object(router, "route", timed_route),
        mock.patch.object(tasks, "dispatch", lambda *a, **k: None),
    ):
        for i in range(args.messages):
            wa_id = rng.choice(wa_ids)
            parsed = inbound(number, wa_id, rng.choice(texts), f"wamid.router.{i}")
            started = time.perf_counter()
            with transaction.atomic():
                message = inbox_services.message_receive(number=number, inbound=parsed)
            totals.append((time.perf_counter() - started) * 1000)
            owners[message.handled_by or "(team)"] = (
                owners.get(message.handled_by or "(team)", 0) + 1
            )
            if i == args.customers // 2:  # by now most customers have a chat: AI on in half
                chats = Chat.objects.filter(number=number).order_by("pk")
                half = list(chats.values_list("pk", flat=True))[::2]
                Chat.objects.filter(pk__in=half).update(ai_enabled=True)
    print(f"messages: {args.messages} from {args.customers} customers; owners: {owners}")
    print(
        "router's own cost (every handler's accepts, the claim): "
        + _figures(overheads)
        + "  <- what the router adds (target p95 < 2 ms)"
    )
    print("router.route including the owner's handle: " + _figures(timings))
    print("message_receive, whole: " + _figures(totals))


def _figures(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5):.2f} ms, p95 {percentile(values, 0.95):.2f} ms, p99 {percentile(values, 0.99):.2f} ms"


if __name__ == "__main__":
    main()
