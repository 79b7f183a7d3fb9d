"""An index of the messages still pending (outbound ones not sent yet).

The sweeps for lost and interrupted sends filtered the whole message table (a sequential scan,
every 15 seconds for flows' lost sends); they now read only this small index. Built
CONCURRENTLY on PostgreSQL, so customers' messages keep being stored while it runs."""

from django.db import migrations, models

from kernel.migration_ops import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("inbox", "0015_contact_search_trigrams")]

    operations = [
        AddIndexOnline(
            model_name="message",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["created_at"],
                name="message_unsent",
            ),
        ),
    ]
