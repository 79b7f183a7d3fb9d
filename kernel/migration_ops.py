"""Index changes on large, busy tables without stopping their writers.

A plain ``CREATE INDEX`` holds a lock that blocks every INSERT into the table until it is built:
on the webhook log that would hold Meta's deliveries for as long as the build takes. On
PostgreSQL these build and drop the index ``CONCURRENTLY`` (the migration must say
``atomic = False``); elsewhere (SQLite) they are Django's ordinary operations.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class _OnlineOnPostgres:
    plain: type  # the ordinary operation, for other databases

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexOnline(_OnlineOnPostgres, AddIndexConcurrently):
    plain = AddIndex


class RemoveIndexOnline(_OnlineOnPostgres, RemoveIndexConcurrently):
    plain = RemoveIndex
