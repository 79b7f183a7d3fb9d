"""Fuzzing the webhook as Meta meets it: Hypothesis-generated deliveries, signed with the
number's secret, posted to its webhook and processed. Never a 5xx; every well-formed message
is stored (cleaned and clamped to its columns) and every well-formed status applied; every
broken item is recorded on its delivery with where it sits and why; a body refused as a whole
(NaN, nested too deeply, cut short) is recorded as such.

Examples per test: ``FUZZ_EXAMPLES`` (default 200, about 10-20 s on two cores). The outside
fault-injection run used 10,000; to repeat it (about 40 minutes on two busy cores):

    FUZZ_EXAMPLES=10000 .venv/bin/pytest -q tests/integrations/test_webhook_fuzz.py
"""

from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from inbox.models import Contact, Message, OrphanStatus
from integrations.models import WebhookEvent
from integrations.whatsapp import payloads as wa
from tests.base import BaseTestCase
from tests.integrations.conftest import inbound_body, post_signed
from tests.integrations.payload_strategies import FUZZ, deliveries, is_storable, storable


class WebhookFuzzTests(HypothesisTestCase, BaseTestCase):
    """Each example runs in its own rolled-back transaction (Hypothesis's Django test case)."""

    @FUZZ
    @given(st.data())
    def test_signed_deliveries_store_every_good_item_and_record_every_bad_one(self, data):
        raw, expected = data.draw(deliveries(self.number.phone_number_id))
        event(expected.malformed or "readable")  # --hypothesis-show-statistics tells the mix
        if not expected.malformed:
            event(f"{len(expected.stored)} stored, {len(expected.rejected)} rejected")
        with self.captureOnCommitCallbacks(execute=True):
            response = post_signed(self.client, self.number, raw)
        self.assertEqual(response.status_code, 200, response.content)
        delivery = WebhookEvent.objects.get(pk=response.json()["received"])
        self.assertIsNotNone(delivery.processed_at, delivery.error)
        if expected.malformed:
            self.assertIn(expected.malformed, delivery.error)
            self.assertFalse(
                Message.objects.filter(number=self.number, chat__isnull=False)
                .filter(wamid__startswith="wamid.0.")
                .exists()
            )
            return

        stored = {
            message.wamid: message
            for message in Message.objects.filter(
                number=self.number, wamid__in=list(expected.stored)
            ).select_related("chat__contact")
        }
        self.assertEqual(set(stored), set(expected.stored), delivery.error)
        for wamid, drawn in expected.stored.items():
            message = stored[wamid]
            self.assertTrue(is_storable(message.text), wamid)
            if drawn["type"] == "text":
                self.assertEqual(message.text, storable(drawn["text"]["body"])[:4096])
            contact = message.chat.contact
            self.assertEqual(contact.wa_id, storable(str(drawn["from"]), wa.WA_ID_MAX))
            self.assertLessEqual(len(contact.phone), wa.PHONE_MAX)
            self.assertLessEqual(len(contact.profile_name), wa.PROFILE_NAME_MAX)
            self.assertTrue(is_storable(contact.profile_name))

        # Statuses name messages we never sent: each is kept to apply when one appears.
        orphans = dict(
            OrphanStatus.objects.filter(number=self.number).values_list("wamid", "status")
        )
        self.assertEqual(orphans, expected.statuses)

        for where in expected.rejected:
            self.assertIn(where, delivery.error)
        if not expected.rejected:
            self.assertEqual(delivery.error, "")
        self.assertEqual(delivery.attempts, 1)  # nothing was left for a retry

    @FUZZ
    @given(st.text(max_size=80))
    def test_any_signature_header_is_refused_and_never_a_server_error(self, header):
        body = inbound_body(self.number, wamid="wamid.signed")
        with self.captureOnCommitCallbacks(execute=True):
            response = post_signed(self.client, self.number, body, signature=header)
        self.assertIn(response.status_code, (401, 403))
        self.assertFalse(WebhookEvent.objects.exists())
        self.assertFalse(Contact.objects.filter(wa_id="5511977776666").exists())
