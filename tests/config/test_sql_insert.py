"""``kernel.sql.insert`` and ``insert_many``: rows inserted by the compiled statements are the
rows ``objects.create`` and ``bulk_create`` would have stored (issue 21: the API's send inserts
its message with the first, the inbound drain a batch's contacts, chats and messages with the
second)."""

from django.db import connection
from django.db.models.signals import post_save
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from inbox.models import Chat, Contact, Message
from kernel import sql
from tests.base import make_chat, make_org

# Columns that differ between any two new rows by design.
OWN = {"id", "code", "timestamp", "created_at"}


class InsertTests(TestCase):
    def setUp(self):
        sql._insert_sql.clear()  # each test compiles the statement afresh
        sql._insert_many_sql.clear()
        self.org, self.number = make_org("Clínica SQL", "clinica-sql", "444")
        self.chat = make_chat(self.org, self.number, "5511900000044", "Ana")
        self.earlier = Message.objects.filter(chat=self.chat).first()

    def fields(self, **extra):
        return {
            "organization_id": self.org.pk,
            "chat": self.chat,
            "number_id": self.number.pk,
            "direction": Message.Direction.OUTBOUND,
            "type": "text",
            "text": "Consulta confirmada às 10h",
            "content": {"type": "text", "text": {"body": "Consulta confirmada às 10h"}},
            "reply_to": self.earlier,
            "reply_to_wamid": "wamid.X",
            "author_type": Message.Author.AUTOMATION,
            "author_ref": "key:pfk_abc",
            **extra,
        }

    def stored(self, message: Message) -> dict:
        row = Message.objects.filter(pk=message.pk).values().get()
        return {column: value for column, value in row.items() if column not in OWN}

    def test_the_row_is_the_one_create_stores(self):
        created = Message.objects.create(**self.fields())
        inserted = sql.insert(Message(**self.fields()))
        self.assertIsNotNone(inserted.pk)
        self.assertNotEqual(inserted.pk, created.pk)
        self.assertFalse(inserted._state.adding)
        self.assertEqual(self.stored(inserted), self.stored(created))
        # The values the instance holds are the stored ones (defaults and auto_now_add).
        row = Message.objects.get(pk=inserted.pk)
        self.assertEqual(
            (row.code, row.timestamp, row.created_at),
            (inserted.code, inserted.timestamp, inserted.created_at),
        )
        self.assertEqual(row.content["text"]["body"], "Consulta confirmada às 10h")
        self.assertEqual(row.reply_to_id, self.earlier.pk)
        # Saved again as any saved instance: an update of the same row.
        inserted.text = "Editado"
        inserted.save(update_fields=["text"])
        self.assertEqual(Message.objects.get(pk=inserted.pk).text, "Editado")

    def test_one_statement_per_insert(self):
        sql.insert(Message(**self.fields()))
        with CaptureQueriesContext(connection) as queries:
            sql.insert(Message(**self.fields(text="Outra")))
        self.assertEqual(len(queries), 1, [q["sql"] for q in queries.captured_queries])
        self.assertTrue(queries[0]["sql"].startswith("INSERT INTO"))

    def test_insert_then_runs_the_statement_in_the_same_round_trip(self):
        """The API's send: the message, and the chat's live-event number (its RETURNING)."""
        created = Message.objects.create(**self.fields())
        seq = Chat.objects.get(pk=self.chat.pk).seq
        bump = "UPDATE inbox_chat SET seq = seq + 1 WHERE id = %s RETURNING id, seq"
        with CaptureQueriesContext(connection) as queries:
            inserted = Message(**self.fields())
            rows = sql.insert_then(inserted, bump, [self.chat.pk])
        self.assertEqual([tuple(row) for row in rows], [(self.chat.pk, seq + 1)])
        self.assertEqual(Chat.objects.get(pk=self.chat.pk).seq, seq + 1)
        self.assertIsNotNone(inserted.pk)
        self.assertFalse(inserted._state.adding)
        self.assertEqual(self.stored(inserted), self.stored(created))
        self.assertEqual(Message.objects.get(pk=inserted.pk).code, inserted.code)
        one = connection.vendor == "postgresql"
        self.assertEqual(len(queries), 1 if one else 2, [q["sql"] for q in queries])

    def test_insert_then_a_statement_that_matches_nothing_still_inserts(self):
        bump = "UPDATE inbox_chat SET seq = seq + 1 WHERE id = %s RETURNING id, seq"
        inserted = Message(**self.fields())
        self.assertEqual(sql.insert_then(inserted, bump, [-1]), [])
        self.assertTrue(Message.objects.filter(pk=inserted.pk, code=inserted.code).exists())

    def test_a_model_with_save_receivers_is_saved_by_django(self):
        seen = []

        def receiver(sender, instance, created, **kwargs):
            seen.append((instance.pk, created))

        post_save.connect(receiver, sender=Message, dispatch_uid="test-sql-insert")
        try:
            inserted = sql.insert(Message(**self.fields()))
        finally:
            post_save.disconnect(sender=Message, dispatch_uid="test-sql-insert")
        self.assertEqual(seen, [(inserted.pk, True)])
        self.assertTrue(Message.objects.filter(pk=inserted.pk).exists())

    def test_many_rows_are_the_ones_bulk_create_stores(self):
        texts = ["Olá", "", "Quero remarcar", "Obrigada"]
        created = Message.objects.bulk_create(
            [Message(**self.fields(text=text, reply_to=None)) for text in texts]
        )
        for _round in range(2):  # compiled on the first, reused on the second
            batch = [Message(**self.fields(text=text, reply_to=None)) for text in texts]
            inserted = sql.insert_many(batch)
            self.assertIs(inserted, batch)
            self.assertEqual(len({message.pk for message in inserted}), len(texts))
            self.assertTrue(all(not message._state.adding for message in inserted))
            self.assertEqual(
                [self.stored(message) for message in inserted],
                [self.stored(message) for message in created],
            )
            for message in inserted:  # the instance holds the stored defaults
                row = Message.objects.get(pk=message.pk)
                self.assertEqual((row.code, row.created_at), (message.code, message.created_at))
        if connection.vendor == "postgresql":  # compiled, by UNNEST (elsewhere: bulk_create)
            self.assertIsNotNone(sql._insert_many_sql[Message])

    def test_many_rows_in_one_statement(self):
        sql.insert_many([Message(**self.fields()) for _ in range(3)])
        with CaptureQueriesContext(connection) as queries:
            sql.insert_many([Message(**self.fields()) for _ in range(250)])
        if connection.vendor == "postgresql":  # SQLite's bulk_create splits by its parameters
            self.assertEqual(len(queries), 1)
        self.assertEqual(Message.objects.filter(chat=self.chat).count(), 1 + 253)

    def test_a_duplicate_still_fails_as_bulk_create_fails(self):
        """The inbound store relies on it: two workers creating the same customer."""
        from django.db import IntegrityError, transaction

        contacts = [Contact(organization=self.org, wa_id=f"55119000001{i}") for i in range(2)]
        sql.insert_many(contacts)
        again = [Contact(organization=self.org, wa_id=f"55119000001{i}") for i in range(2)]
        with self.assertRaises(IntegrityError), transaction.atomic():
            sql.insert_many(again)
        self.assertEqual(Contact.objects.filter(wa_id__startswith="55119000001").count(), 2)
