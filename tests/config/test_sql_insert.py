"""``kernel.sql.insert``: a row inserted by the compiled statement is the row
``objects.create`` would have stored (issue 21: the API's send inserts its message with it)."""

from django.db import connection
from django.db.models.signals import post_save
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from inbox.models import Message
from kernel import sql
from tests.base import make_chat, make_org

# Columns that differ between any two new rows by design.
OWN = {"id", "code", "timestamp", "created_at"}


class InsertTests(TestCase):
    def setUp(self):
        sql._insert_sql.clear()  # each test compiles the statement afresh
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
