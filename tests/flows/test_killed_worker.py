"""Kill -9 a flow worker between steps of 50 concurrent runs: a second worker continues every
run from the step that did not commit; no message is stored or sent twice, none is lost."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from unittest import mock

import pytest
import requests
from django.test import override_settings
from django.utils import timezone

from accounts.models import Organization
from flows import runtime, services
from flows.models import FlowRun
from inbox.models import Chat, Contact, Message
from integrations import services as channel
from integrations.models import WhatsAppNumber
from kernel import tasks
from tests.campaigns.test_killed_worker import outbound, standalone_sandbox  # noqa: F401
from tests.servers import ROOT
from tests.servers import test_database_url as database_url

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]
RUNS = 50
TEXTS = ["Passo 1", "Passo 2", "Passo 3"]


def worker(sandbox_url, log_name, *extra):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "SANDBOX_URL": sandbox_url,
        "SANDBOX_WEBHOOK_BASE_URL": "http://127.0.0.1:9",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(ROOT / "var" / log_name, "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "manage.py", "flow_worker", "--poll", "0.05", "--lease-seconds", "1",
         "--lost-send-seconds", "1", *extra],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def three_messages():
    nodes = [{"id": "start", "type": "start", "props": {}}]
    edges, previous = [], "start"
    for i, text in enumerate(TEXTS, start=1):
        nodes.append({"id": f"m{i}", "type": "message", "props": {"text": text}})
        edges.append({"from": previous, "port": "next", "to": f"m{i}"})
        previous = f"m{i}"
    return {"nodes": nodes, "edges": edges}


def test_runs_continue_exactly_once_across_a_killed_worker(standalone_sandbox):  # noqa: F811
    organization = Organization.objects.create(name="Clínica K", slug="clinica-k-flows")
    number = WhatsAppNumber.objects.create(
        organization=organization,
        name="main",
        display_phone_number="+55 11 4000-0000",
        phone_number_id="7101",
        waba_id="7102",
        access_token="token-k",
        app_secret="secret-k",
    )
    with override_settings(
        SANDBOX_URL=standalone_sandbox, SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9"
    ):
        channel.sandbox_register(number, force=True)
    requests.post(
        f"{standalone_sandbox}/_sandbox/numbers",
        json={"phone_number_id": "7101", "delays": {"sent": None, "delivered": None, "read": None}},
        timeout=5,
    ).raise_for_status()
    flow = services.flow_create(
        organization=organization, name="Três passos", draft=three_messages()
    )
    services.flow_publish(flow=flow)
    flow.refresh_from_db()
    with mock.patch.object(tasks, "enqueue"):  # the runs wait for the worker
        for i in range(RUNS):
            contact = Contact.objects.create(
                organization=organization, wa_id=f"55119888{i:05d}", phone=f"+55119888{i:05d}"
            )
            chat = Chat.objects.create(
                organization=organization,
                contact=contact,
                number=number,
                window_expires_at=timezone.now() + timedelta(hours=20),
            )
            chat = Chat.objects.select_related("contact", "organization").get(pk=chat.pk)
            runtime.run_start(flow=flow, chat=chat, trigger="test")
    FlowRun.objects.update(due_at=timezone.now())
    flow_messages = Message.objects.filter(chat__organization=organization, direction="out")

    first = worker(standalone_sandbox, "flow-worker-1.log")
    deadline = time.monotonic() + 60
    while flow_messages.count() < 40:
        assert time.monotonic() < deadline, "the first worker never got going"
        assert first.poll() is None, (ROOT / "var" / "flow-worker-1.log").read_text()[-2000:]
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    assert FlowRun.objects.exclude(status=FlowRun.Status.COMPLETED).exists()

    second = worker(standalone_sandbox, "flow-worker-2.log", "--until-idle")
    assert second.wait(180) == 0, (ROOT / "var" / "flow-worker-2.log").read_text()[-2000:]

    assert set(FlowRun.objects.values_list("status", flat=True)) == {FlowRun.Status.COMPLETED}
    stored = Counter(flow_messages.values_list("chat_id", "text"))
    assert len(stored) == RUNS * len(TEXTS) and max(stored.values()) == 1
    log = outbound(standalone_sandbox, "7101")
    sent = Counter((m["to"], m["message"]["text"]["body"]) for m in log)
    assert max(sent.values()) == 1, "a message went out twice"
    # Every message went out, except at most the one whose send call the kill interrupted:
    # inbox marks that one "interrupted" for a person to check (it may or may not have arrived).
    claimed = flow_messages.filter(status="pending", error_title="sending").count()
    assert claimed <= 1
    assert flow_messages.filter(status="sent").count() >= RUNS * len(TEXTS) - claimed
    assert len(log) >= RUNS * len(TEXTS) - claimed
