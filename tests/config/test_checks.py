"""``manage.py migrate`` warns an operator whose PostgreSQL runs without autovacuum (issue 21):
the drain's plans depend on the statistics it keeps."""

import pytest
from django.core.management import call_command
from django.db import connection

from kernel import checks


@pytest.mark.django_db
def test_the_check_warns_exactly_when_the_servers_autovacuum_is_off(capsys):
    if connection.vendor != "postgresql":
        assert checks.autovacuum_on(databases=["default"]) == []  # SQLite has none to turn on
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        on = cursor.fetchone()[0] == "on"
    warnings = checks.autovacuum_on(databases=["default"])
    assert [w.id for w in warnings] == ([] if on else ["porfin.W001"])
    call_command("check", "--database", "default")
    assert ("autovacuum is off" in capsys.readouterr().err) is not on
