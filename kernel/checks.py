"""System checks about the database server the product runs on (``manage.py migrate`` and
``manage.py check --database default`` print them)."""

from django.core.checks import Tags, Warning, register
from django.db import connections


@register(Tags.database)
def autovacuum_on(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    """PostgreSQL plans every query from the statistics autovacuum keeps. With it off, a table
    that grew since its last ANALYZE is planned as the size it was: the webhook drain's lookups
    then read whole organizations (25-100 ms a batch instead of 1), and the log's dead rows are
    never cleared."""
    warnings = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SHOW autovacuum")
            value = cursor.fetchone()[0]
        if value != "on":
            warnings.append(
                Warning(
                    f"autovacuum is {value} on the PostgreSQL server of database {alias!r}.",
                    hint="Turn it on (autovacuum = on, PostgreSQL's default), or run "
                    "VACUUM ANALYZE on a schedule: query plans depend on fresh statistics.",
                    id="porfin.W001",
                )
            )
    return warnings
