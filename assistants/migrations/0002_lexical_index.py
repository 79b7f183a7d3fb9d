"""The lexical index of knowledge chunks: FTS5 on SQLite, a GIN full-text index on PostgreSQL."""

from django.db import migrations

SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE assistants_chunk_fts USING fts5("
    "text, tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER assistants_chunk_fts_insert AFTER INSERT ON assistants_knowledgechunk "
    "BEGIN INSERT INTO assistants_chunk_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER assistants_chunk_fts_delete AFTER DELETE ON assistants_knowledgechunk "
    "BEGIN DELETE FROM assistants_chunk_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER assistants_chunk_fts_update AFTER UPDATE OF text ON assistants_knowledgechunk "
    "BEGIN UPDATE assistants_chunk_fts SET text = new.text WHERE rowid = old.id; END",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS assistants_chunk_fts_update",
    "DROP TRIGGER IF EXISTS assistants_chunk_fts_delete",
    "DROP TRIGGER IF EXISTS assistants_chunk_fts_insert",
    "DROP TABLE IF EXISTS assistants_chunk_fts",
]
POSTGRES_FORWARD = [
    "CREATE INDEX assistants_chunk_search ON assistants_knowledgechunk "
    "USING GIN (to_tsvector('simple'::regconfig, COALESCE(text, '')))",
]
POSTGRES_BACKWARD = ["DROP INDEX IF EXISTS assistants_chunk_search"]


def forward(apps, schema_editor):
    statements = {"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def backward(apps, schema_editor):
    statements = {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("assistants", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
