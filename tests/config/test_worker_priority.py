"""A ``qcluster`` lowers its own priority (``kernel.tasks.lower_worker_priority``), and on Linux
with autogroup that of its session too when the session is its own: nice alone counts only
inside a session, and the bench saw a niced drain take as much CPU as the web processes.

A process whose session was never created by ``setsid`` (CI's runner, a container's PID 1
session) sits in the root autogroup: the kernel prints nothing for it and it cannot be
reniced, so its session nice reads as ``None``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUTOGROUP = "/proc/self/autogroup"

pytestmark = pytest.mark.skipif(not os.path.exists(AUTOGROUP), reason="no autogroup on this kernel")

CHILD = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from kernel import tasks
tasks.lower_worker_priority()
print(os.nice(0), (open("/proc/self/autogroup").read().split() or ["root"])[-1])
"""


def parse_session_nice(text: str) -> int | None:
    """``/autogroup-85 nice 0`` gives 0; the root autogroup prints nothing (``root`` from CHILD)."""
    words = text.split()
    return int(words[-1]) if words and words[-1] != "root" else None


def run_cluster_stand_in(*, own_session: bool, nice: str) -> tuple[int, int | None]:
    """(process nice, session nice) of a child that starts as ``qcluster`` does."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env={**os.environ, "Q_WORKER_NICE": nice},
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=own_session,
        check=True,
    )
    process_nice, session_nice = done.stdout.split()[-2:]
    return int(process_nice), parse_session_nice(session_nice)


def session_nice() -> int | None:
    with open(AUTOGROUP) as autogroup:
        return parse_session_nice(autogroup.read())


def test_a_cluster_in_a_session_of_its_own_lowers_the_session():
    assert run_cluster_stand_in(own_session=True, nice="7") == (7 + os.nice(0), 7)


def test_a_cluster_sharing_a_session_lowers_only_itself():
    before = session_nice()
    process_nice, its_session_nice = run_cluster_stand_in(own_session=False, nice="7")
    assert process_nice == 7 + os.nice(0)
    assert its_session_nice == before == session_nice()  # the web processes' session untouched


def test_nice_zero_changes_nothing():
    assert run_cluster_stand_in(own_session=True, nice="0") == (os.nice(0), 0)
