"""Exactly once with real processes: a worker SIGKILLed in the middle of sending to a standalone
sandbox, then a second worker finishes; every recipient got one message and none was lost."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
from django.test import override_settings
from django.utils import timezone

from accounts.models import Organization
from campaigns import dispatch
from campaigns.models import Campaign
from integrations import services as channel
from integrations.models import WhatsAppNumber
from tests.campaigns.helpers import make_campaign, make_contacts, make_template
from tests.servers import ROOT, ServerProcess, free_port
from tests.servers import test_database_url as database_url

pytestmark = pytest.mark.multiprocess
RECIPIENTS = 60


@pytest.fixture
def standalone_sandbox():
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "whatsapp_sandbox",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/_sandbox/", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


def worker(sandbox_url, webhook_url, campaign_id, log_name, *, defaults=False):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "SANDBOX_URL": sandbox_url,
        "SANDBOX_WEBHOOK_BASE_URL": webhook_url,
        "TASK_RUNNER": "thread",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(ROOT / "var" / log_name, "wb")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "campaign_worker",
            "--campaign",
            str(campaign_id),
            "--until-done",
            *([] if defaults else ["--lease-seconds", "2", "--reconcile-seconds", "3"]),
            "--poll",
            "0.2",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def outbound(sandbox_url, pnid):
    response = requests.get(
        f"{sandbox_url}/_sandbox/numbers/{pnid}/messages",
        params={"direction": "outbound"},
        timeout=5,
    )
    return response.json()["messages"]


@pytest.fixture
def web_server(transactional_db, standalone_sandbox):
    """The web process receiving the sandbox's status webhooks. Its embedded ticker may also
    pick the campaign up after the kill, like any worker would."""
    server = ServerProcess()
    server.env.update(SANDBOX_URL=standalone_sandbox, SANDBOX_WEBHOOK_BASE_URL=server.url)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("defaults", [False, True], ids=["short-leases", "defaults"])
def test_it_sends_exactly_once_across_a_killed_worker(web_server, standalone_sandbox, defaults):
    """With the production defaults too: the second worker takes over once the dead worker's
    lease runs out, and its claimed rows are sent (or proved sent) after their reconcile window:
    well under a minute, with nothing sent twice."""
    live_asgi_server = web_server
    organization = Organization.objects.create(name="Clínica K", slug="clinica-k")
    number = WhatsAppNumber.objects.create(
        organization=organization,
        name="main",
        display_phone_number="+55 11 4000-0000",
        phone_number_id="7001",
        waba_id="7002",
        access_token="token-k",
        app_secret="secret-k",
    )
    with override_settings(
        SANDBOX_URL=standalone_sandbox, SANDBOX_WEBHOOK_BASE_URL=live_asgi_server.url
    ):
        channel.sandbox_register(number, force=True)
    requests.post(
        f"{standalone_sandbox}/_sandbox/numbers",
        json={
            "phone_number_id": "7001",
            "throughput_cap": 20,
            "delays": {"sent": 0.05, "delivered": None, "read": None},
        },
        timeout=5,
    ).raise_for_status()
    contacts = make_contacts(organization, RECIPIENTS)
    campaign = make_campaign(
        organization,
        number,
        make_template(number),
        rate_per_second=20,
        status=Campaign.Status.SCHEDULED,
        next_run_at=timezone.now(),
    )
    assert dispatch.run_start(campaign.pk)

    first = worker(
        standalone_sandbox,
        live_asgi_server.url,
        campaign.pk,
        "campaign-worker-1.log",
        defaults=defaults,
    )
    deadline = time.monotonic() + 30
    while len(outbound(standalone_sandbox, "7001")) < 15:
        assert time.monotonic() < deadline, "the first worker never started sending"
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    sent_before = len(outbound(standalone_sandbox, "7001"))
    assert sent_before < RECIPIENTS
    # The killed worker left claimed rows behind, some sent without a recorded answer.
    assert campaign.recipients.filter(status="sending").exists()

    killed_at = time.monotonic()
    second = worker(
        standalone_sandbox,
        live_asgi_server.url,
        campaign.pk,
        "campaign-worker-2.log",
        defaults=defaults,
    )
    options = dispatch.Options.from_settings()
    if defaults:
        # Nothing happens before the dead worker's lease ends (no heartbeat renews it now)...
        time.sleep(1)
        assert campaign.recipients.filter(status="sending").exists()
        # ...and the campaign is done once the lease and the claimed rows' window have passed
        # (plus sending the rest at 20/s and process start-up).
        bound = options.lease_seconds + options.claim_reconcile_seconds + 15
        assert bound < 61
        assert second.wait(bound) == 0, "not recovered within the lease and reconcile window"
        assert time.monotonic() - killed_at >= options.lease_seconds
    else:
        assert second.wait(90) == 0

    log = outbound(standalone_sandbox, "7001")
    per_recipient = Counter(m["to"] for m in log)
    assert set(per_recipient) == {c.wa_id for c in contacts}
    assert max(per_recipient.values()) == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    rows = list(campaign.recipients.values_list("status", "wamid"))
    assert {status for status, _ in rows} == {"sent"}
    assert {wamid for _, wamid in rows} == {m["wamid"] for m in log}
