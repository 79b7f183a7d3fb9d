"""Media get a public ``code`` (their URL is the authenticated view ``/inbox/media/<code>/``) and
new files a random, organization-prefixed key. Files stored before keep their key and are served
through the same view."""

import uuid

from django.db import migrations, models

import inbox.media


def give_codes(apps, schema_editor):
    Media = apps.get_model("inbox", "Media")
    pending = Media.objects.filter(code__isnull=True).only("pk")
    batch = []
    for media in pending.iterator(chunk_size=2000):
        media.code = uuid.uuid4()
        batch.append(media)
        if len(batch) == 2000:
            Media.objects.bulk_update(batch, ["code"])
            batch = []
    if batch:
        Media.objects.bulk_update(batch, ["code"])


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0008_chat_count_and_tag_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="media",
            name="code",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(give_codes, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="media",
            name="code",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AlterField(
            model_name="media",
            name="file",
            field=models.FileField(
                blank=True, max_length=255, upload_to=inbox.media.media_upload_to
            ),
        ),
    ]
