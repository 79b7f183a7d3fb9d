"""The drain's claim index matches the claim's WHERE (processed_at IS NULL AND attempts = 0).

Built before the old one is dropped, both CONCURRENTLY on PostgreSQL, so deliveries keep being
stored and claimed while it runs."""

from django.db import migrations, models

from kernel.migration_ops import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("integrations", "0005_merge_daily_cap_and_pending_index"),
    ]

    operations = [
        AddIndexOnline(
            model_name="webhookevent",
            index=models.Index(
                condition=models.Q(("attempts", 0), ("processed_at__isnull", True)),
                fields=["id"],
                name="webhookevent_unclaimed",
            ),
        ),
        RemoveIndexOnline(model_name="webhookevent", name="webhookevent_pending_by_id"),
    ]
