"""Inbound path per customer message, to compare two checkouts (before and after a change):

    .venv/bin/python bench/inbound_path.py ROOT DATABASE_NAME

times ``inbox.services.message_receive`` and its commit for 2,000 customer messages of 400
customers (half the chats with the AI on, a daily-question program on the number, a few STOPs)
using the code in ROOT — e.g. a worktree of the commit before the conversation router, where the
old listeners ran in the commit callbacks, and this one, where the router runs inside. Tasks are
not run (they are not the inbound path). Uses its own PostgreSQL database, dropped first.
"""

import os
import random
import statistics
import sys
import time
from unittest import mock


def main(root: str, database: str) -> None:
    sys.path.insert(0, root)
    sys.path.insert(0, root + "/bench")
    os.chdir(root)
    from _assistants_setup import clinic, setup_django

    setup_django(
        f"postgres://postgres@127.0.0.1:5432/{database}",
        TASK_RUNNER="inline",
        ASSISTANT_DEBOUNCE_SECONDS="3600",
    )
    from assistants_pipeline import inbound
    from django.db import transaction

    from campaigns.models import DripProgram
    from inbox import services as inbox_services
    from inbox.models import Chat

    try:
        from kernel import tasks
    except ImportError:  # a checkout from before the kernel
        from config import tasks

    organization, number, _assistant = clinic("inbound")
    DripProgram.objects.create(
        organization=organization,
        name="Pergunta do dia",
        kind=DripProgram.Kind.QUESTION_OF_THE_DAY,
        number=number,
    )
    rng = random.Random(14)
    wa_ids = [f"5511{900000000 + i}" for i in range(400)]
    texts = ["Bom dia, quanto custa a limpeza?", "Vocês abrem sábado?", "ok, obrigado"] * 6
    texts.append("STOP")
    times = []
    with mock.patch.object(tasks, "dispatch", lambda *a, **k: None):
        for i, wa_id in enumerate(wa_ids):  # every customer writes first: the chats exist
            with transaction.atomic():
                first = inbound(number, wa_id, "oi", f"wamid.first.{i}")
                inbox_services.message_receive(number=number, inbound=first)
        chats = list(Chat.objects.filter(number=number).order_by("pk").values_list("pk", flat=True))
        Chat.objects.filter(pk__in=chats[::2]).update(ai_enabled=True)
        for i in range(2000):
            parsed = inbound(number, rng.choice(wa_ids), rng.choice(texts), f"wamid.timed.{i}")
            started = time.perf_counter()
            with transaction.atomic():
                inbox_services.message_receive(number=number, inbound=parsed)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(
        f"{root}: message_receive + commit p50 {times[1000]:.2f} ms, p95 {times[1900]:.2f} ms,"
        f" p99 {times[1980]:.2f} ms, mean {statistics.mean(times):.2f} ms"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
