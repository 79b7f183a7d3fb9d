from django.db import migrations, models
from django.db.models import F


def mark_erased(apps, schema_editor):
    """Contacts erased before the column existed carry ``opt_in_source="erased"``."""
    Contact = apps.get_model("inbox", "Contact")
    Contact.objects.filter(opt_in_source="erased", erased_at__isnull=True).update(
        erased_at=F("opt_in_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0010_merge_media_and_router"),
    ]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="erased_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="erased at"
            ),
        ),
        migrations.RunPython(mark_erased, migrations.RunPython.noop, elidable=True),
    ]
