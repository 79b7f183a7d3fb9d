"""Contact import from a CSV or XLSX file, as a background task with progress.

The page uploads the file to the media storage (so any web box or worker can read it), the
owner maps its columns, and ``import_start`` queues ``import_run`` on the bulk queue. The run
imports ``CHUNK`` rows per transaction through ``inbox.contacts.contacts_upsert`` (upsert by
phone: a re-run never duplicates a contact) and commits the checkpoint (``processed_rows``), the
counts and the chunk's bad rows with them. A worker killed midway loses at most its open chunk;
``imports_resume`` (periodic) hands an import whose lease ran out to another worker, which
starts from the checkpoint. Bad rows are skipped and kept with their reason, downloadable as a
CSV the owner can fix and import again.
"""

import csv
import io
import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import services
from campaigns.models import ConsentEvent, ContactImport, ContactImportError
from inbox import contacts as inbox_contacts
from kernel import tasks

logger = logging.getLogger(__name__)


def upload_path(organization, token: str) -> str:
    """Where an uploaded file waits (CSV or XLSX, told apart by its content)."""
    return f"contact-imports/{organization.code}/{token}.upload"


def _lease() -> timedelta:
    return timedelta(seconds=settings.CONTACT_IMPORT_LEASE_SECONDS)


def import_start(
    *, organization, actor, path: str, header: list[str], mapping: dict[str, str], rows: int
) -> ContactImport:
    """Record the import and queue it (after commit) on the bulk workers."""
    with transaction.atomic():
        job = ContactImport.objects.create(
            organization=organization,
            created_by=actor,
            path=path,
            header=header,
            mapping=mapping,
            total_rows=rows,
        )
        tasks.enqueue("campaigns.tasks.contact_import_run", job.pk, queue="bulk")
    return job


def _claim(import_id: int) -> ContactImport | None:
    """Take the import's lease (queued, or running with its lease run out); the attempt number
    then fences out a worker that lost the lease."""
    now = timezone.now()
    claimed = (
        ContactImport.objects.filter(
            pk=import_id, status__in=[ContactImport.Status.QUEUED, ContactImport.Status.RUNNING]
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            status=ContactImport.Status.RUNNING,
            lease_until=now + _lease(),
            attempt=F("attempt") + 1,
        )
    )
    if not claimed:
        return None
    return ContactImport.objects.select_related("organization").get(pk=import_id)


def import_run(import_id: int) -> str:
    """Import from the checkpoint to the end, one committed chunk at a time."""
    job = _claim(import_id)
    if job is None:
        return "not mine"
    try:
        with default_storage.open(job.path) as handle:
            _header, rows = services.import_file_read(handle.read())
    except services.ImportFileError as error:
        return _fail(job, str(error))
    except OSError:  # gone from the storage: nothing left to import from
        return _fail(job, _("The uploaded file is no longer available; upload it again."))
    columns = {i: job.mapping.get(name, "") for i, name in enumerate(job.header)}
    region = services.default_region(job.organization)
    chunk_size = settings.CONTACT_IMPORT_CHUNK
    offset = job.processed_rows
    while offset < len(rows):
        chunk = rows[offset : offset + chunk_size]
        with transaction.atomic():
            current = ContactImport.objects.select_for_update().get(pk=job.pk)
            if current.attempt != job.attempt or current.processed_rows != offset:
                return "lease lost"  # another worker took over; its checkpoint rules
            counts = _import_chunk(
                job, chunk, first_line=offset + 2, columns=columns, region=region
            )
            offset += len(chunk)
            ContactImport.objects.filter(pk=job.pk).update(
                processed_rows=offset,
                created_count=F("created_count") + counts["created"],
                updated_count=F("updated_count") + counts["updated"],
                merged_count=F("merged_count") + counts["merged"],
                error_count=F("error_count") + counts["errors"],
                lease_until=timezone.now() + _lease(),
            )
    with transaction.atomic():
        done = ContactImport.objects.filter(pk=job.pk, attempt=job.attempt).update(
            status=ContactImport.Status.DONE, lease_until=None, finished_at=timezone.now()
        )
        if done:
            path = job.path
            transaction.on_commit(lambda: default_storage.delete(path))
    return "done" if done else "lease lost"


def _import_chunk(job, rows, *, first_line: int, columns, region) -> dict[str, int]:
    counts = {"created": 0, "updated": 0, "merged": 0, "errors": 0}
    merged: dict[str, dict] = {}
    errors = []
    for line, row in enumerate(rows, start=first_line):
        if not any(cell.strip() for cell in row):
            continue
        try:
            phone, values = services.import_row_values(row, columns, region)
        except ValueError as error:
            errors.append(
                ContactImportError(
                    contact_import=job, line=line, message=str(error)[:300], cells=row
                )
            )
            continue
        if phone in merged:  # the same phone twice in the chunk: one contact
            counts["merged"] += 1
            previous = merged[phone]
            previous["tags"] += values.pop("tags")
            previous["attributes"].update(values.pop("attributes"))
            previous.update(values)
        else:
            merged[phone] = values
    ContactImportError.objects.bulk_create(errors)
    counts["errors"] = len(errors)
    if not merged:
        return counts
    upserted = inbox_contacts.contacts_upsert(
        organization_id=job.organization_id, rows=merged, source="import"
    )
    counts["created"], counts["updated"] = len(upserted.created), len(upserted.updated)
    for contact in [*upserted.created, *upserted.updated]:
        values = merged.get(contact.phone) or merged.get(f"+{contact.wa_id}") or {}
        if "opt_in" in values:
            services.contact_set_consent(
                contact=contact,
                opted_in=values["opt_in"],
                source=ConsentEvent.Source.IMPORT,
                actor=job.created_by,
            )
    return counts


def _fail(job: ContactImport, reason: str) -> str:
    ContactImport.objects.filter(pk=job.pk, attempt=job.attempt).update(
        status=ContactImport.Status.FAILED,
        failure=reason[:300],
        lease_until=None,
        finished_at=timezone.now(),
    )
    logger.warning("Contact import %s failed: %s", job.code, reason)
    return "failed"


def imports_resume() -> int:
    """Queue again every import whose worker stopped (lease run out, or queued and never
    started within a lease): the next run starts at its checkpoint."""
    now = timezone.now()
    stalled = ContactImport.objects.filter(
        Q(status=ContactImport.Status.RUNNING, lease_until__lt=now)
        | Q(status=ContactImport.Status.QUEUED, created_at__lt=now - _lease())
    ).values_list("pk", flat=True)[:50]
    count = 0
    for import_id in stalled:
        tasks.dispatch("campaigns.tasks.contact_import_run", import_id, queue="bulk")
        count += 1
    return count


def errors_csv(job: ContactImport) -> str:
    """The rows that were not imported, as in the file, with their line and reason first."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("line"), _("problem"), *job.header])
    for error in job.row_errors.iterator(chunk_size=2000):
        writer.writerow([error.line, error.message, *error.cells])
    return out.getvalue()
