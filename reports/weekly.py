"""The weekly report email: the last 7 days against the 7 before, with every report attached
as one XLSX file, sent to the teammates an admin or manager chose.

A periodic task (``reports.tasks.weekly_reports_send``) looks every few minutes for
organizations whose chosen weekday and hour (in the organization's time zone) have come; the
``WeeklyReportDelivery`` row inserted for that week is the claim, so two workers never send
the same week twice.
"""

import logging
import zoneinfo
from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Organization, User
from reports import charts, exports, selectors, stats
from reports.models import ReportSettings, WeeklyReportDelivery
from reports.selectors import Period

logger = logging.getLogger(__name__)

# A week whose hour passed longer ago than this (workers down) is skipped, not sent days late.
LATE_LIMIT = timedelta(hours=24)
XLSX = exports.FORMATS["xlsx"]


def due_date(config: ReportSettings, now: datetime) -> date | None:
    """The local date of this week's report when it is due at ``now``, else None."""
    tz = zoneinfo.ZoneInfo(config.organization.time_zone)
    local = now.astimezone(tz)
    day = local.date() - timedelta(days=(local.weekday() - config.weekly_weekday) % 7)
    due_at = datetime.combine(day, time(config.weekly_hour), tzinfo=tz)
    return day if due_at <= local < due_at + LATE_LIMIT else None


def week_before(day: date) -> Period:
    """The 7 full local days before ``day``."""
    return Period(day - timedelta(days=7), day - timedelta(days=1))


def recipients(config: ReportSettings):
    """The chosen teammates who are still active members of the organization."""
    return (
        config.weekly_recipients.filter(
            is_active=True, memberships__organization_id=config.organization_id
        )
        .distinct()
        .order_by("email")
    )


def _content(organization: Organization, period: Period, data: dict, csat_on: bool) -> dict:
    """Subject, text, HTML and attachment in the active language."""
    current = data["current"]
    context = {
        "organization": organization,
        "period": period,
        "previous": period.previous,
        "cards": charts.cards(
            current,
            data["previous"],
            has_assistants=apps.is_installed("assistants"),
            has_campaigns=apps.is_installed("campaigns"),
            show_csat=csat_on or bool(current.csat_responses or data["previous"].csat_responses),
        ),
        "funnel": data["funnel"],
    }
    return {
        "subject": _("Weekly report: %(organization)s, %(first)s – %(last)s")
        % {"organization": organization.name, "first": period.first, "last": period.last},
        "text": render_to_string("reports/email/weekly_report.txt", context),
        "html": render_to_string("reports/email/weekly_report.html", context),
        "xlsx": exports.workbook(data),
    }


def weekly_emails(
    organization: Organization, period: Period, users
) -> list[EmailMultiAlternatives]:
    """One email per recipient (nobody sees the others' addresses), in each one's language."""
    csat_on = ReportSettings.objects.filter(organization=organization, csat_enabled=True).exists()
    data = selectors.report(organization, period)
    by_language: dict[str, dict] = {}
    messages = []
    for user in users:
        language = user.language or organization.language
        if language not in by_language:
            with translation.override(language):
                by_language[language] = _content(organization, period, data, csat_on)
        content = by_language[language]
        message = EmailMultiAlternatives(
            subject=settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + content["subject"],
            body=content["text"],
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[user.email],
        )
        message.attach_alternative(content["html"], "text/html")
        name = f"{organization.slug}-report-{period.first}-{period.last}.xlsx"
        message.attach(name, content["xlsx"], XLSX)
        messages.append(message)
    return messages


def _refresh(organization: Organization, period: Period) -> None:
    """Recount both weeks first: the periodic refresh only keeps today and yesterday fresh, so
    a late message or a refresh job that was down would otherwise go unnoticed."""
    stats.stats_rebuild(organization, first=period.previous.first, last=period.last)


def weekly_report_deliver(*, config: ReportSettings, day: date) -> WeeklyReportDelivery | None:
    """Send the week of ``day`` once: None when another run has claimed it already."""
    organization = config.organization
    users = list(recipients(config))
    if not users:
        return None
    period = week_before(day)
    try:
        with transaction.atomic():
            delivery = WeeklyReportDelivery.objects.create(
                organization=organization,
                scheduled_for=day,
                period_first=period.first,
                period_last=period.last,
                recipients=[user.email for user in users],
            )
    except IntegrityError:
        return None
    try:
        _refresh(organization, period)
        get_connection().send_messages(weekly_emails(organization, period, users))
    except Exception as error:  # the reason is kept on the row and logged; no retry storm
        logger.exception("Weekly report of %s for %s failed", organization.slug, day)
        delivery.status, delivery.error = WeeklyReportDelivery.Status.FAILED, str(error)[:2000]
        delivery.save(update_fields=["status", "error"])
        return delivery
    delivery.status, delivery.sent_at = WeeklyReportDelivery.Status.SENT, timezone.now()
    delivery.save(update_fields=["status", "sent_at"])
    return delivery


def weekly_reports_send(now: datetime | None = None) -> int:
    """Send every report that is due; returns how many weeks this run sent."""
    now = now or timezone.now()
    sent = 0
    due = ReportSettings.objects.filter(weekly_enabled=True).select_related("organization")
    for config in due:
        day = due_date(config, now)
        if day is None:
            continue
        if WeeklyReportDelivery.objects.filter(
            organization=config.organization, scheduled_for=day
        ).exists():
            continue
        delivery = weekly_report_deliver(config=config, day=day)
        sent += delivery is not None and delivery.status == WeeklyReportDelivery.Status.SENT
    return sent


def weekly_report_send_to(*, organization: Organization, user: User) -> Period:
    """The "send now to me" button: the last 7 full days, to one member, off the schedule
    (from the statistics as they are, like the dashboard: no recount inside a request)."""
    period = week_before(stats.local_today(organization))
    get_connection().send_messages(weekly_emails(organization, period, [user]))
    return period
