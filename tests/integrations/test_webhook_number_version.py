"""Deactivating a number or rotating its secret reaches every process's webhook at once, not
after the per-process cache of webhook numbers expires (``WEBHOOK_NUMBER_TTL``, 10 s): a version
in the shared cache moves after the change commits and each process checks it at most every
``VERSION_CHECK_SECONDS``."""

import time

import pytest
import requests
from django.conf import settings

from integrations import numbers, services
from integrations.whatsapp.signature import sign
from kernel import cache as kernel_cache
from tests.base import BaseTestCase, make_org
from tests.integrations.conftest import inbound_body, post_signed, webhook_path


class OneProcessTests(BaseTestCase):
    """The embedded default (local memory cache) and Redis alike, in this process."""

    def test_deactivation_and_rotation_apply_to_the_next_delivery(self):
        body = inbound_body(self.number, wamid="wamid.v1")
        self.assertEqual(post_signed(self.client, self.number, body).status_code, 200)
        self.assertIsNotNone(services.webhook_number_cached(self.number.webhook_key))
        old_secret = self.number.app_secret
        self.number.app_secret = "rotated-secret"
        with self.captureOnCommitCallbacks(execute=True):  # any save of a number (e.g. the admin)
            self.number.save(update_fields=["app_secret"])
        refused = post_signed(
            self.client, self.number, inbound_body(self.number, wamid="wamid.v2"), secret=old_secret
        )
        self.assertEqual(refused.status_code, 403)
        with self.captureOnCommitCallbacks(execute=True):
            numbers.number_set_active(number=self.number, active=False)
        gone = post_signed(self.client, self.number, inbound_body(self.number, wamid="wamid.v3"))
        self.assertEqual(gone.status_code, 404)

    def test_a_change_made_elsewhere_is_seen_within_the_check_interval(self):
        """Another process bumped the shared version (here: the counter moved under us)."""
        key = self.number.webhook_key
        services._version.checked -= services.VERSION_CHECK_SECONDS
        self.assertIsNotNone(services.webhook_number(key))  # checked the version, then cached
        services._version.checked = time.monotonic()  # just checked
        kernel_cache.version_bump(services.WEBHOOK_NUMBERS_VERSION)
        self.assertIsNotNone(services.webhook_number_cached(key))  # no GET before the interval
        services._version.checked -= services.VERSION_CHECK_SECONDS
        self.assertIsNone(services.webhook_number_cached(key))  # version moved: dropped


@pytest.mark.skipif(
    not settings.CACHES["default"]["BACKEND"].endswith("SharedRedisCache"),
    reason="across processes needs the shared cache (REDIS_URL)",
)
def test_another_process_stops_accepting_a_deactivated_number_at_once(live_asgi_server):
    """A real server process caches the number, this process deactivates it: the server
    answers 404 within the check interval, far below the 10 s cache lifetime."""
    _org, number = make_org("Clínica Versão", "clinica-versao", "7001")
    url = live_asgi_server.url + webhook_path(number)

    def deliver(wamid: str, secret: str) -> int:
        body = inbound_body(number, wamid=wamid)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
        return requests.post(url, data=body, headers=headers, timeout=5).status_code

    assert deliver("wamid.p1", number.app_secret) == 200  # cached by the server now
    old_secret = number.app_secret
    number.app_secret = "rotated-in-another-process"
    number.save(update_fields=["app_secret"])
    started = time.monotonic()
    while deliver(f"wamid.p2-{time.monotonic()}", old_secret) != 403:
        assert time.monotonic() - started < 2, "the old secret was still accepted after 2 s"
        time.sleep(0.05)
    assert deliver("wamid.p3", "rotated-in-another-process") == 200
    numbers.number_set_active(number=number, active=False)
    started = time.monotonic()
    while (status := deliver(f"wamid.p4-{time.monotonic()}", "rotated-in-another-process")) != 404:
        assert status == 200
        assert time.monotonic() - started < 2, "the deactivated number still answered after 2 s"
        time.sleep(0.05)
    assert time.monotonic() - started < services.WEBHOOK_NUMBER_TTL
