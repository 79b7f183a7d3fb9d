"""No double booking, enforced by PostgreSQL: an exclusion constraint over the span each active
appointment blocks on its professional's agenda (``btree_gist`` lets the professional id share
the GiST index). SQLite has no such constraint; there the booking service serialises writers on
the professional's row (``appointments.services``), so this migration does nothing there."""

from django.db import migrations

CONSTRAINT = "appointment_no_overlap"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"ALTER TABLE appointments_appointment ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist "
        "(professional_id WITH =, tstzrange(blocked_from, blocked_until, '[)') WITH &&) "
        "WHERE (status IN ('booked', 'confirmed'))"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE appointments_appointment DROP CONSTRAINT IF EXISTS {CONSTRAINT}"
    )


class Migration(migrations.Migration):
    dependencies = [("appointments", "0001_catalogue_agendas_bookings")]

    operations = [migrations.RunPython(forwards, backwards)]
