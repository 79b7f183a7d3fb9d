"""Behind a reverse proxy the audit log, throttles and sign-in limits see the customer's
address, not the proxy's, and only when the proxy is trusted (``FORWARDED_ALLOW_IPS``)."""

import re

import pytest
import requests

from reports.models import AuditEvent
from tests.base import make_user
from tests.servers import ServerProcess


def failed_sign_in_from(server: ServerProcess, forwarded_for: str) -> None:
    session = requests.Session()
    page = session.get(f"{server.url}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    session.post(
        f"{server.url}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "login": "ana@proxy.test", "password": "wrong-pass"},
        headers={"X-Forwarded-For": forwarded_for, "Referer": f"{server.url}/accounts/login/"},
        timeout=10,
    )


@pytest.mark.multiprocess
@pytest.mark.parametrize(
    ("trusted", "recorded"),
    [("127.0.0.1", "203.0.113.9"), ("10.9.9.9", "127.0.0.1")],
    ids=["trusted-proxy", "untrusted-peer"],
)
def test_the_audit_log_sees_the_client_behind_a_trusted_proxy(transactional_db, trusted, recorded):
    make_user("ana@proxy.test")
    server = ServerProcess(env={"FORWARDED_ALLOW_IPS": trusted}).start()
    try:
        failed_sign_in_from(server, "203.0.113.9")
    finally:
        server.stop()
    event = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_FAILED)
    assert event.ip == recorded
