"""A big contact import in the background, with real processes: the owner uploads and maps the
file on a web process, watches its progress, the process running the import is SIGKILLed
midway, and another one resumes from the checkpoint: every row imported once, no duplicates,
the bad rows downloadable.

The suite imports 5,000 rows; the issue's 50,000-row case is the slow-marked parameter
(``RUN_SLOW=1 pytest tests/campaigns/test_import_killed_worker.py``)."""

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from django.db.models import Count
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organization, Role, User
from campaigns.models import ContactImport
from inbox.models import Contact
from tests.inbox.test_multiprocess_fanout import REDIS_URL, redis_available
from tests.servers import ROOT, ServerProcess
from tests.servers import test_database_url as database_url

pytestmark = pytest.mark.multiprocess

# Small chunks and a short lease, so the kill lands midway and the resume comes soon.
WORKER_ENV = {"CONTACT_IMPORT_CHUNK": "100", "CONTACT_IMPORT_LEASE_SECONDS": "3"}
BAD_LINES = 3


def csv_file(rows: int) -> bytes:
    """``rows`` distinct valid phones, the first ten repeated once (merged, never doubled) and
    three bad rows spread through the file."""
    lines = ["telefone,nome,cidade,tags"]
    for i in range(rows):
        lines.append(f"+55119{70000000 + i:08d},Cliente {i},Santos,importado")
        if i < 10:
            lines.append(f"(11) 9{7000 + i // 10000:04d}-{i % 10000:04d},Cliente {i},,retorno")
        if i in (7, rows // 2, rows - 3):
            lines.append(f"12{i},Sem telefone {i},,")
    return ("\n".join(lines) + "\n").encode()


def session_for(user: User, server: ServerProcess) -> requests.Session:
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    page = session.get(f"{server.url}/campaigns/contacts/import/", timeout=10)
    assert page.status_code == 200, page.text[:300]
    return session


def csrf(session: requests.Session, html: str) -> dict:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return {"csrfmiddlewaretoken": token}


def start_import(
    owner: User, server: ServerProcess, rows: int, stopped
) -> tuple[ContactImport, str]:
    """Upload and map the file on ``server`` as its owner would, and ``stopped(find)`` the
    import midway: it watches from the moment the last POST leaves, because the import starts
    at that POST's commit and may be well on its way (or done) before the answer arrives. The
    job and the import's page address."""
    session = session_for(owner, server)
    page = session.get(f"{server.url}/campaigns/contacts/import/", timeout=10).text
    mapping = session.post(
        f"{server.url}/campaigns/contacts/import/",
        data=csrf(session, page),
        files={"file": ("contatos.csv", csv_file(rows), "text/csv")},
        timeout=60,
    )
    assert mapping.status_code == 200, mapping.text[-500:]
    token = re.search(r'name="token" value="([0-9a-f]+)"', mapping.text).group(1)
    jobs = ContactImport.objects.filter(organization__memberships__user=owner)
    with ThreadPoolExecutor(1) as pool:
        posting = pool.submit(
            session.post,
            f"{server.url}/campaigns/contacts/import/",
            data={
                **csrf(session, mapping.text),
                "token": token,
                "col_0": "phone",
                "col_1": "name",
                "col_2": "attribute",
                "col_3": "tags",
            },
            allow_redirects=False,
            timeout=60,
        )
        job = stopped(jobs.first)
        try:
            started = posting.result()
        except requests.RequestException:  # its process was killed before it answered
            started = None
    location = reverse("campaign_contact_import_detail", args=[job.code])
    if started is not None:
        assert started.status_code == 302, started.text[-500:]
        assert started.headers["Location"] == location
    assert job.total_rows == rows + 10 + BAD_LINES
    return job, location


def stat_fields(stat: Path) -> list[str]:
    """A /proc ``stat`` file's fields after the command name: state first, then ppid, pgrp…
    ([] once the process or thread is gone)."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def group_of(leader: int) -> list[int]:
    """The processes of ``leader``'s process group (a qcluster and the workers it forked)."""
    return [
        int(stat.parent.name)
        for stat in Path("/proc").glob("[0-9]*/stat")
        if stat_fields(stat)[2:3] == [str(leader)]
    ]


def freeze(pids: list[int]) -> None:
    """SIGSTOP ``pids`` and wait until every thread of theirs has stopped: from then on nothing
    they do can commit."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            while (fields := stat_fields(stat)) and fields[0] not in "tTZX":
                assert time.monotonic() < deadline, f"{stat} did not stop"
                time.sleep(0.001)


def kill_midway(find, pids) -> ContactImport:
    """SIGKILL the processes ``pids()`` names once the import ``find()`` returns shows progress,
    looking only while they are frozen, so the import can't move on (nor finish) between the
    look and the kill however the box schedules this test and the worker. The import."""
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the import never got going"
        frozen = pids()
        freeze(frozen)
        job = find()
        if job is not None:
            assert job.status != ContactImport.Status.DONE, "it ended before it could be stopped"
            if job.processed_rows * 100 >= job.total_rows:  # a percent the page can show
                for pid in frozen:
                    os.kill(pid, signal.SIGKILL)
                return job
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.002)


def check_stopped_midway(job: ContactImport, owner: User, location: str) -> None:
    job.refresh_from_db()
    assert job.status == ContactImport.Status.RUNNING
    assert 0 < job.processed_rows < job.total_rows, job.processed_rows
    # The page (what htmx polls every second) shows how far it got.
    client = Client()
    client.force_login(owner)
    part = client.get(location, headers={"HX-Request": "true"}).content.decode()
    percent = int(re.search(r'<progress[^>]* value="(\d+)"', part).group(1))
    assert percent == job.processed_rows * 100 // job.total_rows
    assert 0 < percent < 100
    assert 'hx-trigger="every 1s"' in part


def check_finished(job: ContactImport, owner: User, server: ServerProcess, location: str, rows):
    deadline = time.monotonic() + (120 if rows <= 5000 else 900)
    while job.status != ContactImport.Status.DONE:
        assert time.monotonic() < deadline, f"not resumed: {job.processed_rows}/{job.total_rows}"
        time.sleep(0.5)
        job.refresh_from_db()
    assert job.attempt >= 2
    assert job.processed_rows == job.total_rows
    assert job.error_count == BAD_LINES

    contacts = Contact.objects.filter(organization=job.organization)
    assert contacts.count() == rows
    assert not contacts.values("wa_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    repeated = contacts.get(phone="+5511970000003")
    assert sorted(repeated.tags) == ["importado", "retorno"]
    assert repeated.attributes == {"cidade": "Santos"}

    session = session_for(owner, server)
    done = session.get(server.url + location, timeout=10)
    assert 'data-status="done"' in done.text
    answer = session.get(server.url + location + "errors.csv", timeout=10)
    errors = list(csv.reader(io.StringIO(answer.text)))
    assert len(errors) == 1 + BAD_LINES
    assert [line[3] for line in errors[1:]] == [
        "Sem telefone 7",
        f"Sem telefone {rows // 2}",
        f"Sem telefone {rows - 3}",
    ]


def owner_of_a_clinic() -> User:
    org = Organization.objects.create(name="Clínica Grande", slug="grande", language="pt-br")
    owner = User.objects.create_user(email="owner@grande.test", password="a-long-passphrase-42")
    Membership.objects.create(user=owner, organization=org, role=Role.ADMIN)
    return owner


@pytest.mark.parametrize(
    "lines",
    [
        5000,
        pytest.param(
            50_000,
            marks=pytest.mark.skipif(
                os.environ.get("RUN_SLOW") != "1", reason="slow: set RUN_SLOW=1"
            ),
        ),
    ],
)
def test_a_big_import_survives_a_killed_worker_without_duplicates(transactional_db, lines):
    """Embedded mode: the web process runs the import on its bulk threads; it is killed, and
    another web process resumes it."""
    rows = lines - 10 - BAD_LINES  # distinct phones; the file has ``lines`` rows in all
    owner = owner_of_a_clinic()
    first = ServerProcess(env=WORKER_ENV).start()
    second = None
    try:
        # Killed with no chance to finish its chunk or tidy up.
        job, location = start_import(
            owner, first, rows, lambda find: kill_midway(find, lambda: [first.process.pid])
        )
        first.process.wait(10)
        check_stopped_midway(job, owner, location)
        # Another process (any web or worker box) takes the import over once its lease expires.
        second = ServerProcess(env=WORKER_ENV).start()
        check_finished(job, owner, second, location, rows)
    finally:
        first.stop()
        if second is not None:
            second.stop()


def qcluster(name: str) -> subprocess.Popen:
    """A real ``qcluster`` of ``name`` (in its own process group, so that SIGKILL reaches the
    workers it forks too)."""
    env = {
        **os.environ,
        **WORKER_ENV,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        "TASK_RUNNER": "django_q",
        "Q_CLUSTER_NAME": name,
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def test_production_workers_a_bulk_qcluster_killed_midway(transactional_db):
    """PostgreSQL + Redis: the web process queues the import on django-q2; a bulk ``qcluster``
    runs it and is SIGKILLed with its workers; the default cluster's ticker notices the lease
    ran out and queues it again; a new bulk cluster finishes it."""
    from django.conf import settings

    if not (redis_available() and settings.REDIS_URL == REDIS_URL):
        pytest.skip("needs the workers' Redis as this process's cache (the PostgreSQL + Redis run)")
    rows = 5000 - 10 - BAD_LINES
    owner = owner_of_a_clinic()
    web = ServerProcess(env={"REDIS_URL": REDIS_URL, "TASK_RUNNER": "django_q", **WORKER_ENV})
    web.start()
    bulk, default, again = qcluster("porfin-bulk"), qcluster("porfin"), None
    try:
        job, location = start_import(
            owner, web, rows, lambda find: kill_midway(find, lambda: group_of(bulk.pid))
        )
        stop(bulk, signal.SIGKILL)
        check_stopped_midway(job, owner, location)
        again = qcluster("porfin-bulk")
        check_finished(job, owner, web, location, rows)
    finally:
        for process in (bulk, default, again):
            if process is not None:
                stop(process)
        web.stop()
        redis.Redis.from_url(REDIS_URL).delete("django_q:porfin-bulk:q", "django_q:porfin:q")
