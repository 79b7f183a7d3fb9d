"""Background work: keep today's and yesterday's statistics fresh, apply retention policies,
send CSAT surveys and record their answers, send the weekly report emails."""

from datetime import timedelta

from accounts.models import Organization
from reports import alerts, csat, stats, weekly
from reports.models import RetentionPolicy
from reports.privacy import retention_purge
from reports.services import api_key_revocations_reconcile


def stats_refresh() -> None:
    for organization in Organization.objects.all():
        today = stats.local_today(organization)
        stats.stats_rebuild(organization, first=today - timedelta(days=1), last=today)


def retention_apply() -> None:
    for policy in RetentionPolicy.objects.filter(message_days__isnull=False).select_related(
        "organization"
    ):
        retention_purge(policy)


def audit_reconcile() -> None:
    api_key_revocations_reconcile()


def csat_send(chat_id: int) -> None:
    csat.csat_send(chat_id=chat_id)


def csat_answer(message_id: int) -> None:
    csat.csat_answer(message_id=message_id)


def weekly_reports_send() -> None:
    weekly.weekly_reports_send()


def alerts_evaluate() -> dict:
    return alerts.alerts_evaluate()
