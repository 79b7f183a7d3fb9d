"""The in-product sandbox of a running server: it finds its own address (a second copy on
another port talks to itself) and its control API refuses anyone without the token."""

import pytest
import requests
from django.test import override_settings

from integrations import sandbox_links
from tests.servers import ServerProcess


@pytest.fixture
def unconfigured_server(transactional_db):
    """A server told nothing about sandbox addresses: it must use its own."""
    server = ServerProcess(env={"SANDBOX_URL": "", "SANDBOX_WEBHOOK_BASE_URL": ""}).start()
    yield server
    server.stop()


def test_the_control_api_refuses_anonymous_calls(unconfigured_server):
    control = unconfigured_server.url + "/sandbox/graph/_sandbox/"
    anonymous = requests.get(control, timeout=5)
    assert anonymous.status_code == 401
    assert "X-Sandbox-Token" in anonymous.json()["error"]
    forged = requests.post(
        control + "numbers/123/inbound",
        json={"from": "5511977776666", "type": "text", "text": "hi"},
        headers={"X-Sandbox-Token": "guess"},
        timeout=5,
    )
    assert forged.status_code == 401
    allowed = requests.get(control, headers=sandbox_links.control_headers(), timeout=5)
    assert allowed.status_code == 200
    assert allowed.json()["numbers"] == []


@override_settings(SANDBOX_URL="", SANDBOX_WEBHOOK_BASE_URL="", PUBLIC_BASE_URL="")
def test_addresses_follow_the_server_the_process_serves_on():
    sandbox_links.forget_server()
    try:
        assert sandbox_links.sandbox_url() == "http://127.0.0.1:8000/sandbox/graph"
        sandbox_links.note_server({"type": "http", "server": ("0.0.0.0", 8123)})  # noqa: S104
        assert sandbox_links.sandbox_url() == "http://127.0.0.1:8123/sandbox/graph"
        assert sandbox_links.webhook_base_url() == "http://127.0.0.1:8123"
        with override_settings(SANDBOX_WEBHOOK_BASE_URL="https://porfin.example/"):
            assert sandbox_links.webhook_base_url() == "https://porfin.example"
    finally:
        sandbox_links.forget_server()


def test_the_webhook_self_test_is_green_for_an_active_number_and_red_otherwise(
    unconfigured_server,
):
    from integrations import numbers
    from integrations.models import WhatsAppNumber
    from tests.base import make_org

    _org, number = make_org("Clínica Teste", "clinica-teste", "7701")
    number.provider = WhatsAppNumber.Provider.CLOUD_API
    number.save()
    url = f"{unconfigured_server.url}/webhooks/whatsapp/{number.webhook_key}/"
    checks = numbers.webhook_self_test(number, url)
    assert [check.ok for check in checks] == [True, True], checks

    # A URL that is not this number's (a stale key pasted from another install): 404s.
    checks = numbers.webhook_self_test(number, url.replace(number.webhook_key, "not-a-key"))
    assert [check.ok for check in checks] == [False, False]
    assert "HTTP 404" in checks[1].detail
    unreachable = numbers.webhook_self_test(number, "http://127.0.0.1:9/webhooks/whatsapp/x/")
    assert all("Unreachable" in check.detail for check in unreachable)
