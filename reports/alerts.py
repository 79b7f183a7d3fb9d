"""Operational alerts: conditions an owner must hear about before customers complain.

``alerts_evaluate`` (periodic, every minute) looks at every condition and compares it with the
open alerts: a condition that starts opens one ``Alert`` (in-app notification and e-mail, once
per episode, however many ticks it lasts); one that is back to normal clears it (and says so).

* failed sends: the share of an organization's sends in the last 15 minutes that failed;
* number quality: WhatsApp flagged a number or its quality rating is yellow or red (the
  rating arrives by webhook, ``integrations.services.number_quality_apply``);
* AI budget: an assistant has spent its organization's share of its monthly budget;
* queue backlog: a worker cluster has too many tasks waiting (the installation's: superusers);
* stopped follow-up work: outbox entries that failed ``kernel.outbox.MAX_ATTEMPTS`` times and
  will not run again until a superuser retries or discards them on the ops page.

Thresholds: ``AlertSettings`` per organization (its admins), ``OpsSettings`` for the operator.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Membership, Organization, Role
from assistants.models import Assistant, UsageRecord
from inbox.consumers import user_group
from inbox.models import Message
from integrations.models import WhatsAppNumber
from kernel import outbox, realtime, tasks
from reports.models import Alert, AlertSettings, OpsSettings

logger = logging.getLogger(__name__)

WINDOW = timedelta(minutes=15)
# Ratings and events WhatsApp sends for a number in trouble (quality update webhook and the
# phone number's own ``quality_rating``).
BAD_QUALITY = {"YELLOW", "RED", "FLAGGED", "DOWNGRADE", "BANNED", "RESTRICTED"}

Key = tuple[str, str, str]  # scope, kind, subject


def alert_settings_for(organization) -> AlertSettings:
    found = AlertSettings.objects.filter(organization=organization).first()
    return found or AlertSettings(organization=organization)


def _scope(organization_id: int | None) -> str:
    return f"org:{organization_id}" if organization_id else "system"


def conditions(now=None) -> dict[Key, tuple[int | None, dict]]:
    """Every condition that holds now: ``{(scope, kind, subject): (organization_id, params)}``."""
    now = now or timezone.now()
    found: dict[Key, tuple[int | None, dict]] = {}
    configs = {c.organization_id: c for c in AlertSettings.objects.all()}
    default = AlertSettings()
    for org_id in Organization.objects.values_list("pk", flat=True):
        config = configs.get(org_id, default)
        sends = Message.objects.filter(
            organization_id=org_id, direction="out", timestamp__gte=now - WINDOW
        ).aggregate(total=Count("id"), failed=Count("id", filter=Q(status="failed")))
        total, failed = sends["total"], sends["failed"]
        if (
            total >= config.send_error_min_sends
            and failed * 100 >= config.send_error_percent * total
        ):
            found[(_scope(org_id), Alert.Kind.SEND_ERRORS, "")] = (
                org_id,
                {"failed": failed, "total": total, "percent": round(failed * 100 / total)},
            )
    for number in WhatsAppNumber.objects.filter(is_active=True).only(
        "pk", "organization_id", "name", "quality_rating"
    ):
        config = configs.get(number.organization_id, default)
        if config.quality_alerts and number.quality_rating.upper() in BAD_QUALITY:
            found[(_scope(number.organization_id), Alert.Kind.NUMBER_QUALITY, str(number.pk))] = (
                number.organization_id,
                {"number": number.name, "rating": number.quality_rating.upper()},
            )
    month = now.strftime("%Y-%m")
    budgets = Assistant.objects.filter(monthly_budget__gt=0).values_list(
        "pk", "organization_id", "name", "monthly_budget"
    )
    spent = dict(
        UsageRecord.objects.filter(month=month, assistant_id__in=[b[0] for b in budgets])
        .values("assistant_id")
        .annotate(cost=Sum("cost"))
        .values_list("assistant_id", "cost")
    )
    for assistant_id, org_id, name, budget in budgets:
        cost = spent.get(assistant_id) or 0
        config = configs.get(org_id, default)
        if cost * 100 >= budget * config.ai_budget_percent:
            found[(_scope(org_id), Alert.Kind.AI_BUDGET, str(assistant_id))] = (
                org_id,
                {"assistant": name, "percent": int(cost * 100 / budget), "budget": str(budget)},
            )
    backlog = OpsSettings.get().queue_backlog
    for queue in tasks.QUEUES:
        depth = tasks.queue_depth(queue)
        if depth is not None and depth >= backlog:
            found[("system", Alert.Kind.QUEUE_BACKLOG, queue)] = (
                None,
                {"queue": queue, "depth": depth, "threshold": backlog},
            )
    dead = outbox.dead().count()
    if dead:
        found[("system", Alert.Kind.OUTBOX_DEAD, "")] = (None, {"count": dead})
    return found


def alerts_evaluate() -> dict[str, int]:
    """Open the alerts whose condition started, clear those back to normal."""
    holding = conditions()
    open_alerts = {(a.scope, a.kind, a.subject): a for a in Alert.objects.filter(cleared_at=None)}
    opened = cleared = 0
    for key, (org_id, params) in holding.items():
        if key in open_alerts:
            continue
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    organization_id=org_id, scope=key[0], kind=key[1], subject=key[2], params=params
                )
        except IntegrityError:  # another evaluator opened it first
            continue
        opened += 1
        _announce(alert, opened=True)
    for key, alert in open_alerts.items():
        if key in holding:
            continue
        if Alert.objects.filter(pk=alert.pk, cleared_at=None).update(cleared_at=timezone.now()):
            cleared += 1
            _announce(alert, opened=False)
    return {"opened": opened, "cleared": cleared}


def alert_text(alert: Alert, *, opened: bool = True) -> str:
    """What the alert says, in the active language."""
    p = alert.params
    if not opened:
        return _("Back to normal: %(alert)s") % {"alert": alert.get_kind_display()}
    if alert.kind == Alert.Kind.SEND_ERRORS:
        return _("%(failed)s of the last %(total)s messages failed to send (%(percent)s%%).") % p
    if alert.kind == Alert.Kind.NUMBER_QUALITY:
        return _("WhatsApp rates the number %(number)s as %(rating)s: sending may be limited.") % p
    if alert.kind == Alert.Kind.AI_BUDGET:
        return (
            _("%(assistant)s has used %(percent)s%% of its monthly AI budget (US$ %(budget)s).") % p
        )
    if alert.kind == Alert.Kind.OUTBOX_DEAD:
        return (
            ngettext(
                "%(count)s follow-up task failed too many times and stopped; retry or discard it "
                "on the operations page.",
                "%(count)s follow-up tasks failed too many times and stopped; retry or discard them "
                "on the operations page.",
                p["count"],
            )
            % p
        )
    return _("%(depth)s tasks are waiting in the %(queue)s queue (alert at %(threshold)s).") % p


def _recipients(alert: Alert) -> list:
    users = get_user_model().objects.filter(is_active=True)
    if alert.organization_id is None:
        return list(users.filter(is_superuser=True))
    admins = Membership.objects.filter(organization_id=alert.organization_id, role=Role.ADMIN)
    return list(users.filter(pk__in=admins.values("user_id")))


def _announce(alert: Alert, *, opened: bool) -> None:
    """In-app (a live notification to each recipient's open pages; the bell lists open alerts
    on every page) and by e-mail when the organization wants it."""
    organization = alert.organization
    email = organization is None or alert_settings_for(organization).email
    link = reverse("ops_page") if organization is None else reverse("alert_list")
    for user in _recipients(alert):
        language = user.language or (organization.language if organization else None)
        with translation.override(language or settings.LANGUAGE_CODE):
            text = alert_text(alert, opened=opened)
            event = {"type": "notification", "text": text, "url": link, "alert": alert.kind}
            realtime.publish_on_commit(user_group(user), {"type": "live.event", "data": event})
            if email and user.email:
                subject = _("Alert: %(alert)s") % {"alert": alert.get_kind_display()}
                if not opened:
                    subject = text
                try:
                    send_mail(
                        f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
                        text,
                        None,
                        [user.email],
                    )
                except Exception:  # the in-app alert stands; the mail server's trouble is logged
                    logger.exception("Alert e-mail to user %s failed", user.pk)
    if organization is None and settings.ADMINS and opened:
        logger.warning("Operational alert: %s", alert_text(alert))


def open_alerts_for(user, organization) -> list[Alert]:
    """Open alerts the user should see: their organization's when admin, the installation's
    when superuser."""
    query = Q(pk__in=[])
    if (
        organization is not None
        and Membership.objects.filter(
            user=user, organization=organization, role=Role.ADMIN
        ).exists()
    ):
        query |= Q(organization=organization)
    if user.is_superuser:
        query |= Q(organization=None)
    return list(Alert.objects.filter(query, cleared_at=None)[:20])
