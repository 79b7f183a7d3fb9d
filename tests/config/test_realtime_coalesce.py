"""``kernel.realtime._coalesced``: live events published together to one group travel as one
channel-layer message, in order; nothing else is merged or moved (issue 21: the inbound drain
published one message per customer message, a fifth of its CPU)."""

import json

from django.test import SimpleTestCase

from kernel.realtime import _coalesced

LAYER = object()


def live(n: int) -> dict:
    data = {"type": "message.new", "n": n}
    return {"type": "live.event", "data": data, "text": json.dumps(data)}


def numbers(message: dict) -> list[int]:
    return [json.loads(text)["n"] for text in message.get("texts") or [message["text"]]]


class CoalescedTests(SimpleTestCase):
    def test_a_groups_live_events_become_one_message_in_order(self):
        items = [(LAYER, "org-1", live(n)) for n in range(200)]
        ((layer, group, message),) = _coalesced(items)
        self.assertEqual((layer, group, message["type"]), (LAYER, "org-1", "live.event"))
        self.assertEqual(numbers(message), list(range(200)))

    def test_groups_stay_apart_and_a_lone_event_is_sent_as_published(self):
        items = [
            (LAYER, "org-1", live(0)),
            (LAYER, "user-7", live(1)),
            (LAYER, "org-1", live(2)),
        ]
        merged = _coalesced(items)
        self.assertEqual([(group, numbers(m)) for _, group, m in merged], [
            ("org-1", [0, 2]),
            ("user-7", [1]),
        ])  # fmt: skip
        self.assertIs(merged[1][2], items[1][2])  # unchanged: its data too

    def test_another_kind_of_message_keeps_its_place_in_its_group(self):
        revoked = {"type": "member.revoked"}
        items = [
            (LAYER, "member-3", live(0)),
            (LAYER, "member-3", live(1)),
            (LAYER, "member-3", revoked),
            (LAYER, "member-3", live(2)),
        ]
        merged = [message for _, _, message in _coalesced(items)]
        self.assertEqual(numbers(merged[0]), [0, 1])
        self.assertIs(merged[1], revoked)
        self.assertEqual(numbers(merged[2]), [2])
        self.assertEqual(len(merged), 3)
