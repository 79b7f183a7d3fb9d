"""The batch path of inbound messages: a worker's batch of deliveries stores its customers'
messages in a few statements, with every guarantee of the one-by-one path (once per wamid,
order and live-event numbers per chat, the router's one owner, follow-up work recorded)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbox.models import Chat, Contact, Message
from integrations import services
from integrations.models import WebhookEvent
from kernel.models import OutboxEntry
from tests.base import BaseTestCase
from tests.integrations.conftest import inbound_body

QUERIES_PER_MESSAGE = 4  # issue 21: at most 4 queries per inbound message, amortised


class InboundBatchTests(BaseTestCase):
    def store(self, bodies: list[bytes]) -> list[int]:
        """Deliveries stored as the webhook stores them, not yet processed."""
        return [
            WebhookEvent.objects.create(
                **services.webhook_event_fields(number=self.number, body=body, headers={})
            ).pk
            for body in bodies
        ]

    def process(self, ids: list[int]) -> int:
        """Process like one inbound task; returns the queries the processing took (the
        after-commit work, such as the outbox's tasks, runs afterwards and is not counted)."""
        with (
            self.captureOnCommitCallbacks(execute=True),
            CaptureQueriesContext(connection) as queries,
        ):
            services.webhook_events_process(ids)
        return len(queries)

    def new_customers(self, count: int, prefix: str) -> list[bytes]:
        return [
            inbound_body(
                self.number,
                wamid=f"wamid.{prefix}-{i}",
                wa_id=f"55119{prefix}{i:04d}",
                name=f"Cliente {i}",
            )
            for i in range(count)
        ]

    def test_new_customers_take_at_most_four_queries_a_message(self):
        self.process(self.store(self.new_customers(2, "111")))  # per-process memos warm up
        count = 40
        queries = self.process(self.store(self.new_customers(count, "222")))
        self.assertEqual(Message.objects.filter(wamid__startswith="wamid.222-").count(), count)
        self.assertLessEqual(queries, QUERIES_PER_MESSAGE * count, f"{queries} queries")

    def test_a_batch_of_first_messages_makes_each_customer_a_contact_and_an_open_chat(self):
        ids = self.store(self.new_customers(5, "333"))
        self.process(ids)
        for i in range(5):
            contact = Contact.objects.get(organization=self.org, wa_id=f"55119333{i:04d}")
            self.assertEqual(contact.profile_name, f"Cliente {i}")
            self.assertIsNotNone(contact.last_inbound_at)
            chat = Chat.objects.get(contact=contact, number=self.number)
            self.assertEqual(
                (chat.status, chat.unread_count, chat.seq, chat.last_message_preview),
                (Chat.Status.OPEN, 1, 1, "Olá, tudo bem?"),
            )
            self.assertIsNotNone(chat.window_expires_at)
        self.assertFalse(WebhookEvent.objects.filter(pk__in=ids, processed_at=None).exists())
        # The campaigns' follow-up work of the whole batch, recorded once with the messages.
        self.assertFalse(OutboxEntry.objects.exists())  # and run after the commit (inline)

    def test_the_same_messages_twice_are_stored_once(self):
        bodies = self.new_customers(3, "444")
        self.process(self.store(bodies + bodies[:1]))  # a duplicate inside the batch
        self.process(self.store(bodies))  # and Meta delivering the batch again
        self.assertEqual(Message.objects.filter(wamid__startswith="wamid.444-").count(), 3)
        self.assertEqual(Chat.objects.filter(contact__wa_id__startswith="55119444").count(), 3)

    def test_a_returning_customers_messages_keep_their_order_and_live_event_numbers(self):
        chat = self.other_chat
        seq, unread = chat.seq, chat.unread_count
        wa_id = chat.contact.wa_id
        bodies = [
            inbound_body(self.number, wamid=f"wamid.back-{i}", wa_id=wa_id, content=None)
            for i in range(3)
        ]
        self.process(self.store(bodies))
        chat.refresh_from_db()
        self.assertEqual((chat.seq, chat.unread_count), (seq + 3, unread + 3))
        stored = list(
            Message.objects.filter(wamid__startswith="wamid.back-")
            .order_by("pk")
            .values_list("wamid", flat=True)
        )
        self.assertEqual(stored, ["wamid.back-0", "wamid.back-1", "wamid.back-2"])

    def test_the_router_gives_a_batched_message_to_its_owner(self):
        from inbox import router

        router.register(
            router.Handler(
                key="test-batch",
                order=1,
                label="test",
                accepts=lambda inbound: inbound.message.text == "me",
                handle=lambda inbound: None,
            )
        )
        self.addCleanup(router.unregister, "test-batch")
        bodies = [
            inbound_body(
                self.number,
                wamid=f"wamid.route-{i}",
                wa_id=f"551195550{i:03d}",
                content={"body": text},
            )
            for i, text in enumerate(["me", "not me", "me"])
        ]
        self.process(self.store(bodies))
        owners = dict(
            Message.objects.filter(wamid__startswith="wamid.route-").values_list(
                "wamid", "handled_by"
            )
        )
        self.assertEqual(
            owners,
            {"wamid.route-0": "test-batch", "wamid.route-1": "", "wamid.route-2": "test-batch"},
        )

    def test_a_failing_handler_undoes_nothing_but_its_own_claim(self):
        from inbox import router

        def handle(inbound):
            raise RuntimeError("boom")

        router.register(
            router.Handler(
                key="test-fails",
                order=1,
                label="test",
                accepts=lambda inbound: inbound.message.text == "boom",
                handle=handle,
            )
        )
        self.addCleanup(router.unregister, "test-fails")
        bodies = [
            inbound_body(
                self.number,
                wamid=f"wamid.fail-{i}",
                wa_id=f"551196660{i:03d}",
                content={"body": text},
            )
            for i, text in enumerate(["ok", "boom", "ok"])
        ]
        ids = self.store(bodies)
        self.process(ids)
        self.assertEqual(Message.objects.filter(wamid__startswith="wamid.fail-").count(), 3)
        self.assertFalse(WebhookEvent.objects.filter(pk__in=ids, processed_at=None).exists())
