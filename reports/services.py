"""Audit log writes and the retention policy (LGPD)."""

from uuid import UUID

from django.apps import apps
from django.db import transaction

from accounts.models import Organization
from reports.middleware import current_request
from reports.models import AuditEvent, ReportSettings, RetentionPolicy


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    organization: Organization | None = None,
    actor=None,
    request=None,
    target=None,
    target_label: str = "",
    data: dict | None = None,
) -> AuditEvent:
    """Append one event. Actor and IP default to the current request's (see the middleware)."""
    request = request or current_request.get()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor = user
    if organization is None and request is not None:
        organization = getattr(request, "organization", None)
    label = actor.email if actor is not None else ""
    api_key = getattr(request, "api_key", None)
    if not label and api_key is not None:
        label = f"API key “{api_key.name}” ({api_key.prefix}…)"
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor,
        actor_label=label[:255],
        ip=client_ip(request),
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(getattr(target, "code", None) or getattr(target, "pk", "") or ""),
        target_label=(target_label or (str(target) if target is not None else ""))[:255],
        data=data or {},
    )


def retention_policy_for(organization: Organization) -> RetentionPolicy:
    policy, _created = RetentionPolicy.objects.get_or_create(organization=organization)
    return policy


@transaction.atomic
def retention_policy_update(
    *, organization: Organization, message_days: int | None, actor
) -> RetentionPolicy:
    policy = retention_policy_for(organization)
    if policy.message_days != message_days:
        old = policy.message_days
        policy.message_days = message_days
        policy.save(update_fields=["message_days", "updated_at"])
        audit_record(
            action=AuditEvent.Action.RETENTION_CHANGED,
            organization=organization,
            actor=actor,
            target=policy,
            target_label=organization.name,
            data={"message_days": [old, message_days]},
        )
    return policy


def api_key_revocations_reconcile() -> int:
    """Record API key revocations that happened without a model signal (a queryset ``update``),
    so the audit log misses none; actor and IP are then unknown, the revocation time is kept."""
    try:
        api_key_model = apps.get_model("accounts", "ApiKey")
    except LookupError:
        return 0
    recorded = AuditEvent.objects.filter(
        action=AuditEvent.Action.API_KEY_REVOKED, target_type=api_key_model._meta.label_lower
    ).values("target_id")
    missing = (
        api_key_model.objects.filter(revoked_at__isnull=False)
        .exclude(code__in=[UUID(code) for code in recorded.values_list("target_id", flat=True)])
        .select_related("organization")
    )
    count = 0
    for key in missing:
        audit_record(
            action=AuditEvent.Action.API_KEY_REVOKED,
            organization=key.organization,
            target=key,
            data={"prefix": key.prefix, "revoked_at": key.revoked_at.isoformat()},
        )
        count += 1
    return count


@transaction.atomic
def report_settings_update(*, config: ReportSettings, data: dict, actor) -> ReportSettings:
    """Save the CSAT and weekly email options (``data``: a ``ReportSettingsForm``'s cleaned
    data) and log what changed."""
    recipients = data.pop("weekly_recipients", None)
    changed = [name for name, value in data.items() if getattr(config, name) != value]
    for name, value in data.items():
        setattr(config, name, value)
    config.save()
    if recipients is not None:
        before = set(config.weekly_recipients.values_list("pk", flat=True))
        if before != {user.pk for user in recipients}:
            changed.append("weekly_recipients")
            config.weekly_recipients.set(recipients)
    if changed:
        audit_record(
            action=AuditEvent.Action.SETTINGS_CHANGED,
            organization=config.organization,
            actor=actor,
            target=config,
            target_label=config.organization.name,
            data={"report_settings": sorted(changed)},
        )
    return config
