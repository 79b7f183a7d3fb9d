"""Hostile or odd deliveries, signed as Meta signs them: never a server error, one bad message
never takes the good ones of its delivery down with it, and what could not be processed is
recorded on the delivery with its reason."""

import json
import time

from inbox.models import Chat, Contact, Message, OrphanStatus
from integrations.models import MessageTemplate, WebhookEvent
from integrations.whatsapp import payloads as wa
from tests.base import BaseTestCase
from tests.integrations.conftest import CUSTOMER_WA_ID, post_signed, status_body


class RobustnessTestCase(BaseTestCase):
    def deliver(self, body: bytes, **kwargs):
        with self.captureOnCommitCallbacks(execute=True):
            response = post_signed(self.client, self.number, body, **kwargs)
        self.assertLess(response.status_code, 500, response.content)
        return response

    def messages_body(self, *messages, contacts=None) -> bytes:
        change = wa.build_messages_change(
            phone_number_id=self.number.phone_number_id,
            display_phone_number="551140000000",
            contacts=contacts
            if contacts is not None
            else [wa.build_contact(wa_id=CUSTOMER_WA_ID, profile_name="Carla")],
            messages=messages,
        )
        return wa.encode_webhook(wa.build_webhook("1000", [change]))

    def text(self, wamid: str, body: str, *, wa_id: str = CUSTOMER_WA_ID, **kwargs) -> dict:
        return wa.build_inbound_message(
            wamid=wamid,
            from_wa_id=wa_id,
            message_type="text",
            content=wa.build_text(body),
            timestamp=str(int(time.time())),
            **kwargs,
        )


class LimitTests(BaseTestCase):
    def test_the_parsers_limits_are_the_lengths_of_the_columns_they_fill(self):
        from inbox.models import Media
        from integrations.models import WhatsAppNumber

        columns = [
            (wa.WA_ID_MAX, Contact, "wa_id"),
            (wa.PHONE_MAX, Contact, "phone"),
            (wa.PROFILE_NAME_MAX, Contact, "profile_name"),
            (wa.WAMID_MAX, Message, "wamid"),
            (wa.WAMID_MAX, Message, "reply_to_wamid"),
            (wa.WAMID_MAX, OrphanStatus, "wamid"),
            (wa.STATUS_MAX, Message, "status"),
            (wa.STATUS_MAX, OrphanStatus, "status"),
            (wa.ERROR_TITLE_MAX, Message, "error_title"),
            (wa.MEDIA_ID_MAX, Media, "meta_media_id"),
            (wa.MIME_TYPE_MAX, Media, "mime_type"),
            (wa.FILENAME_MAX, Media, "filename"),
            (wa.TEMPLATE_STATUS_MAX, MessageTemplate, "status"),
            (wa.TEMPLATE_REASON_MAX, MessageTemplate, "rejected_reason"),
            (wa.QUALITY_RATING_MAX, WhatsAppNumber, "quality_rating"),
            (wa.MESSAGING_LIMIT_MAX, WhatsAppNumber, "messaging_limit"),
        ]
        for limit, model, name in columns:
            with self.subTest(column=f"{model.__name__}.{name}"):
                self.assertEqual(limit, model._meta.get_field(name).max_length)


class DoorTests(RobustnessTestCase):
    def test_it_answers_403_for_a_non_ascii_signature(self):
        body = self.messages_body(self.text("wamid.sig", "Olá"))
        for header in ("sha256=ééé", "sha256=" + "é" * 64):
            with self.subTest(header=header):
                response = self.deliver(body, signature=header)
                self.assertEqual(response.status_code, 403)
        self.assertFalse(WebhookEvent.objects.exists())

    def test_it_stores_a_body_nested_too_deeply_as_malformed(self):
        body = b'{"object":"whatsapp_business_account","entry":' + b"[" * 5000 + b"]" * 5000 + b"}"
        response = self.deliver(body)
        self.assertEqual(response.status_code, 200)
        event = WebhookEvent.objects.get()
        self.assertEqual(event.error, "Malformed JSON: nested too deeply")
        self.assertIsNotNone(event.processed_at)
        self.assertEqual(bytes(event.body), body)

    def test_it_records_nan_and_infinity_as_not_json(self):
        for constant in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
            with self.subTest(constant=constant):
                good = self.messages_body(
                    wa.build_inbound_message(
                        wamid=f"wamid.{constant.decode()}",
                        from_wa_id=CUSTOMER_WA_ID,
                        message_type="location",
                        content=wa.build_location(latitude=1.5, longitude=2.5),
                    )
                )
                body = good.replace(b"1.5", constant)
                response = self.deliver(body)
                self.assertEqual(response.status_code, 200)
                event = WebhookEvent.objects.get(pk=response.json()["received"])
                self.assertIn("not valid JSON", event.error)
                self.assertIsNotNone(event.processed_at)
        self.assertFalse(Message.objects.filter(type="location").exists())

    def test_a_content_nested_deeper_than_meta_ever_does_is_recorded_with_the_reason(self):
        deep: dict = {}
        node = deep
        for _ in range(wa.MAX_DEPTH + 5):
            node["next"] = {}
            node = node["next"]
        body = self.messages_body(
            self.text("wamid.deep", "fundo", referral=deep), self.text("wamid.flat", "raso")
        )
        self.deliver(body)
        self.assertTrue(Message.objects.filter(wamid="wamid.flat").exists())
        self.assertFalse(Message.objects.filter(wamid="wamid.deep").exists())
        event = WebhookEvent.objects.get()
        self.assertIn(f"nested deeper than {wa.MAX_DEPTH} levels (wamid wamid.deep)", event.error)


class FieldTests(RobustnessTestCase):
    def test_it_stores_texts_and_names_with_nul_and_lone_surrogates(self):
        body = self.messages_body(
            self.text("wamid.nul", "antes\u0000depois \ud83d fim"),
            contacts=[wa.build_contact(wa_id=CUSTOMER_WA_ID, profile_name="Carla\u0000\udc00")],
        )
        self.assertIn(b"\\u0000", body)
        self.assertIn(b"\\ud83d", body)
        self.deliver(body)
        message = Message.objects.get(wamid="wamid.nul")
        self.assertEqual(message.text, "antes\ufffddepois \ufffd fim")
        self.assertEqual(message.content["text"]["body"], "antes\ufffddepois \ufffd fim")
        self.assertEqual(message.chat.contact.profile_name, "Carla\ufffd\ufffd")
        self.assertEqual(WebhookEvent.objects.get().error, "")

    def test_it_clamps_fields_longer_than_their_columns(self):
        long_wa_id = "55119" + "8" * 60
        long_wamid = "wamid." + "W" * 300
        body = self.messages_body(
            self.text(long_wamid, "oi", wa_id=long_wa_id, context={"id": "wamid." + "R" * 300}),
            contacts=[wa.build_contact(wa_id=long_wa_id, profile_name="N" * 1000)],
        )
        self.deliver(body)
        message = Message.objects.get(wamid__startswith="wamid.WWW")
        self.assertEqual(message.wamid, long_wamid[: wa.WAMID_MAX])
        self.assertEqual(len(message.reply_to_wamid), wa.WAMID_MAX)
        contact = message.chat.contact
        self.assertEqual(contact.wa_id, long_wa_id[: wa.WA_ID_MAX])
        self.assertEqual(contact.profile_name, "N" * wa.PROFILE_NAME_MAX)
        self.assertLessEqual(len(contact.phone), wa.PHONE_MAX)
        event = WebhookEvent.objects.get()
        self.assertEqual(event.error, "")
        # The full values stay in the stored delivery.
        self.assertIn(long_wamid.encode(), bytes(event.body))
        self.assertIn(b"N" * 1000, bytes(event.body))

    def test_it_clamps_status_fields(self):
        wamid = "wamid." + "S" * 300
        self.deliver(status_body(self.number, (wamid, "delivered-but-longer", int(time.time()))))
        orphan = OrphanStatus.objects.get()
        self.assertEqual(orphan.wamid, wamid[: wa.WAMID_MAX])
        self.assertEqual(orphan.status, "delivered-but-longer"[: wa.STATUS_MAX])
        self.assertEqual(WebhookEvent.objects.get().error, "")

    def test_a_failed_status_with_an_enormous_error_code_is_applied(self):
        message = Message.objects.create(
            organization=self.org,
            chat=self.other_chat,
            number=self.number,
            direction=Message.Direction.OUTBOUND,
            text="Lembrete",
            wamid="wamid.out",
            status=Message.Status.SENT,
            author_type=Message.Author.USER,
        )
        error = {"code": 10**12, "title": "T" * 400, "error_data": {"details": "d\u0000"}}
        self.deliver(status_body(self.number, ("wamid.out", "failed", int(time.time()), [error])))
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.FAILED)
        self.assertIsNone(message.error_code)
        self.assertEqual(message.error_title, "T" * wa.ERROR_TITLE_MAX)
        self.assertEqual(message.error_details, "d\ufffd")

    def test_it_clamps_template_and_quality_updates(self):
        template = MessageTemplate.objects.create(
            organization=self.org, number=self.number, meta_id="555", name="welcome", language="pt"
        )
        changes = [
            wa.build_template_status_change(
                template_id="555", name="welcome", language="pt", event="ß" * 40, reason="R" * 999
            ),
            wa.build_phone_quality_change(
                display_phone_number="", event="Q" * 99, current_limit="L" * 99
            ),
        ]
        self.deliver(wa.encode_webhook(wa.build_webhook("1000", changes, entry_time=1)))
        template.refresh_from_db()
        self.assertEqual(template.status, "S" * wa.TEMPLATE_STATUS_MAX)
        self.assertEqual(template.rejected_reason, "R" * wa.TEMPLATE_REASON_MAX)
        self.number.refresh_from_db()
        self.assertEqual(self.number.quality_rating, "Q" * wa.QUALITY_RATING_MAX)
        self.assertEqual(self.number.messaging_limit, "L" * wa.MESSAGING_LIMIT_MAX)
        self.assertEqual(WebhookEvent.objects.get().error, "")


class OneBadMessageTests(RobustnessTestCase):
    def test_a_message_that_cannot_be_read_is_recorded_and_the_others_go_through(self):
        bad = self.text("wamid.bad", "ruim")
        bad["timestamp"] = "soon"
        body = self.messages_body(
            self.text("wamid.one", "um"), bad, self.text("wamid.three", "três")
        )
        self.deliver(body)
        self.assertEqual(
            set(
                Message.objects.filter(chat__contact__wa_id=CUSTOMER_WA_ID).values_list(
                    "wamid", flat=True
                )
            ),
            {"wamid.one", "wamid.three"},
        )
        event = WebhookEvent.objects.get()
        self.assertIsNotNone(event.processed_at)
        self.assertEqual(
            event.error,
            "1 item(s) not processed:\n"
            "entry[0].changes[0].value.messages[1].timestamp must be Unix seconds, got 'soon'"
            " (wamid wamid.bad)",
        )

    def test_a_contact_card_whose_name_is_not_an_object_is_stored(self):
        card = {"name": "Maria", "phones": [{"phone": "+55 11 99999-0000"}]}
        message = wa.build_inbound_message(
            wamid="wamid.card",
            from_wa_id=CUSTOMER_WA_ID,
            message_type="contacts",
            content=[card, wa.build_contact_card(formatted_name="Ana Lima")],
        )
        self.deliver(self.messages_body(message))
        stored = Message.objects.get(wamid="wamid.card")
        self.assertEqual(stored.text, "Ana Lima")
        self.assertEqual(stored.content["contacts"]["contacts"][0], card)

    def test_a_message_a_receiver_cannot_store_is_recorded_and_the_others_go_through(self):
        """A failure the parser could not foresee (here: a receiver meeting a value it cannot
        store) undoes that message alone and is recorded with its reason, not retried."""
        from integrations import signals

        def refuse(sender, *, message, **kwargs):
            if message.wamid == "wamid.refused":
                raise ValueError("cannot store this one")

        def refuse_batch(sender, *, messages, **kwargs):
            for message in messages:
                refuse(sender, message=message)

        # A batch's messages go to the receivers at once, then one by one when that fails.
        signals.messages_batch_received.connect(refuse_batch, dispatch_uid="test-refuse")
        self.addCleanup(signals.messages_batch_received.disconnect, dispatch_uid="test-refuse")
        signals.message_received.connect(refuse, dispatch_uid="test-refuse")
        self.addCleanup(signals.message_received.disconnect, dispatch_uid="test-refuse")
        body = self.messages_body(
            self.text("wamid.before", "antes"),
            self.text("wamid.refused", "recusada"),
            self.text("wamid.after", "depois"),
        )
        self.deliver(body)
        wamids = set(Message.objects.values_list("wamid", flat=True))
        self.assertTrue({"wamid.before", "wamid.after"} <= wamids)
        self.assertNotIn("wamid.refused", wamids)
        chat = Chat.objects.get(contact__wa_id=CUSTOMER_WA_ID)
        self.assertEqual(chat.unread_count, 2)
        event = WebhookEvent.objects.get()
        self.assertIsNotNone(event.processed_at)
        self.assertEqual(event.attempts, 1)
        self.assertEqual(
            event.error,
            "1 item(s) not processed:\nmessage wamid.refused: ValueError: cannot store this one",
        )

    def test_a_status_that_cannot_be_applied_is_recorded_and_the_others_are_applied(self):
        from integrations import signals

        now = int(time.time())
        for wamid in ("wamid.s1", "wamid.s2"):
            Message.objects.create(
                organization=self.org,
                chat=self.other_chat,
                number=self.number,
                direction=Message.Direction.OUTBOUND,
                text="Lembrete",
                wamid=wamid,
                status=Message.Status.SENT,
                author_type=Message.Author.USER,
            )

        def refuse(sender, *, statuses, **kwargs):
            if any(status.wamid == "wamid.s2" for status in statuses):
                raise ValueError("cannot apply this one")

        signals.statuses_received.connect(refuse, dispatch_uid="test-refuse")
        self.addCleanup(signals.statuses_received.disconnect, dispatch_uid="test-refuse")
        self.deliver(status_body(self.number, ("wamid.s1", "read", now), ("wamid.s2", "read", now)))
        self.assertEqual(Message.objects.get(wamid="wamid.s1").status, "read")
        self.assertEqual(Message.objects.get(wamid="wamid.s2").status, "sent")
        event = WebhookEvent.objects.get()
        self.assertIsNotNone(event.processed_at)
        self.assertEqual(
            event.error,
            "1 item(s) not processed:\nstatus wamid.s2: ValueError: cannot apply this one",
        )

    def test_an_unreadable_entry_does_not_hide_the_next_one(self):
        good = json.loads(self.messages_body(self.text("wamid.good", "bom")))
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1000", "changes": "nope"}, *good["entry"]],
        }
        self.deliver(json.dumps(body).encode())
        self.assertTrue(Message.objects.filter(wamid="wamid.good").exists())
        self.assertEqual(
            WebhookEvent.objects.get().error,
            "1 item(s) not processed:\nentry[0].changes must be a list, got str",
        )
        self.assertTrue(Contact.objects.filter(wa_id=CUSTOMER_WA_ID).exists())
