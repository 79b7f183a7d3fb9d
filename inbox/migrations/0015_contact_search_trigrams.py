"""Trigram index for searching contacts by name, profile name or phone on PostgreSQL.

The inbox search, the contacts page and the campaign audience picker all ask for
``UPPER(column) LIKE UPPER('%text%')`` (Django's ``icontains``), which no B-tree can answer: on
100k contacts each search read the whole table (60 ms of the inbox bench's 218). ``pg_trgm``
is a trusted extension (PostgreSQL 13+): a role that may create objects in the database may
create it, as ``btree_gist`` (appointments 0002) already asks. SQLite searches without it."""

from django.db import migrations

COLUMNS = ("name", "profile_name", "phone")


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    expressions = ", ".join(f"UPPER({column}::text) gin_trgm_ops" for column in COLUMNS)
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS contact_search_trgm ON inbox_contact USING GIN ({expressions})"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS contact_search_trgm")


class Migration(migrations.Migration):
    dependencies = [("inbox", "0014_lean_indexes")]
    operations = [migrations.RunPython(create_index, drop_index)]
