"""Full-text index for inbox search on PostgreSQL (SQLite searches with LIKE instead)."""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS message_text_fts ON inbox_message "
            "USING GIN (to_tsvector('simple'::regconfig, COALESCE(text, '')))"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS message_text_fts")


class Migration(migrations.Migration):
    dependencies = [("inbox", "0004_quick_replies")]
    operations = [migrations.RunPython(create_index, drop_index)]
