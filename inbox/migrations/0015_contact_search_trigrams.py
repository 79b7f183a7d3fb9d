"""Trigram index for searching contacts by name, profile name or phone on PostgreSQL.

The inbox search, the contacts page and the campaign audience picker all ask for
``UPPER(column) LIKE UPPER('%text%')`` (Django's ``icontains``), which no B-tree can answer: on
100k contacts each search read the whole table (60 ms of the inbox bench's 218). ``pg_trgm``
is a trusted extension (PostgreSQL 13+): the database's owner may create it. Where the role
may not, the migration says so and goes on: search still works, only slower. SQLite searches
without it."""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

COLUMNS = ("name", "profile_name", "phone")


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        logger.warning(
            "pg_trgm could not be created (%s): contact search runs without its index. "
            "Run CREATE EXTENSION pg_trgm as a superuser, then migrate inbox 0014 and 0015 again.",
            str(error).strip(),
        )
        return
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
