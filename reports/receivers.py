"""Audit-log receivers: sign-ins, two-factor changes, memberships, organization settings, number
credentials and API keys. Each compares the row before and after saving and records only what
changed; secrets are never written to the log (only the names of the changed fields).

Also the CSAT survey's subscriptions to the inbox's domain events (quick: they only enqueue)."""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from accounts.models import Membership, Organization
from inbox import router
from inbox import signals as inbox_signals
from inbox.models import Chat
from integrations.models import WhatsAppNumber
from kernel import tasks
from reports import csat, privacy
from reports.models import AuditEvent
from reports.services import audit_record

Action = AuditEvent.Action
ORGANIZATION_FIELDS = ("name", "slug", "time_zone", "language", "plan", "require_mfa")
CREDENTIAL_FIELDS = ("access_token", "app_secret")


@receiver(user_logged_in, dispatch_uid="audit_login")
def on_login(sender, request, user, **kwargs):
    audit_record(action=Action.LOGIN, actor=user, request=request, target=user)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def on_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action=Action.LOGOUT, actor=user, request=request, target=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    email = str(credentials.get("email") or credentials.get("username") or "")[:255]
    user = get_user_model().objects.filter(email__iexact=email).first() if email else None
    audit_record(
        action=Action.LOGIN_FAILED,
        actor=user,
        request=request,
        target=user,
        target_label=email,
    )


def _connect_mfa():
    try:
        from allauth.mfa import signals as mfa_signals
    except ImportError:  # allauth without the mfa extra
        return
    mapping = {
        "authenticator_added": Action.MFA_ADDED,
        "authenticator_removed": Action.MFA_REMOVED,
        "authenticator_reset": Action.MFA_RESET,
        "authentication_failed": Action.MFA_FAILED,
    }
    for name, action in mapping.items():
        signal = getattr(mfa_signals, name, None)
        if signal is None:
            continue

        def handler(sender, request=None, user=None, authenticator=None, _action=action, **kw):
            audit_record(
                action=_action,
                actor=user,
                request=request,
                target=user,
                data={"type": getattr(authenticator, "type", "")},
            )

        signal.connect(handler, weak=False, dispatch_uid=f"audit_{name}")


_connect_mfa()


def _previous(sender, instance, fields):
    if instance.pk is None:
        return None
    return sender.objects.filter(pk=instance.pk).values(*fields).first()


# --- Memberships -----------------------------------------------------------------------------


@receiver(pre_save, sender=Membership, dispatch_uid="audit_membership_pre")
def membership_before(sender, instance, **kwargs):
    instance._audit_before = _previous(sender, instance, ["role"])


@receiver(post_save, sender=Membership, dispatch_uid="audit_membership_post")
def membership_after(sender, instance, created, **kwargs):
    before = getattr(instance, "_audit_before", None)
    label = instance.user.email
    if created or before is None:
        audit_record(
            action=Action.MEMBER_ADDED,
            organization=instance.organization,
            target=instance,
            target_label=label,
            data={"role": instance.role},
        )
    elif before["role"] != instance.role:
        audit_record(
            action=Action.ROLE_CHANGED,
            organization=instance.organization,
            target=instance,
            target_label=label,
            data={"role": [before["role"], instance.role]},
        )


@receiver(post_delete, sender=Membership, dispatch_uid="audit_membership_delete")
def membership_deleted(sender, instance, **kwargs):
    organization = Organization.objects.filter(pk=instance.organization_id).first()
    if organization is None:  # the organization itself is being deleted
        return
    user = get_user_model().objects.filter(pk=instance.user_id).first()
    audit_record(
        action=Action.MEMBER_REMOVED,
        organization=organization,
        target=instance,
        target_label=user.email if user else "",
        data={"role": instance.role},
    )


# --- Organization settings -------------------------------------------------------------------


@receiver(pre_save, sender=Organization, dispatch_uid="audit_organization_pre")
def organization_before(sender, instance, **kwargs):
    instance._audit_before = _previous(sender, instance, ORGANIZATION_FIELDS)


@receiver(post_save, sender=Organization, dispatch_uid="audit_organization_post")
def organization_after(sender, instance, created, **kwargs):
    before = getattr(instance, "_audit_before", None)
    if created or before is None:
        return
    changed = {
        field: [before[field], getattr(instance, field)]
        for field in ORGANIZATION_FIELDS
        if before[field] != getattr(instance, field)
    }
    if changed:
        audit_record(
            action=Action.SETTINGS_CHANGED,
            organization=instance,
            target=instance,
            data={"changed": changed},
        )


# --- Number credentials ----------------------------------------------------------------------


@receiver(pre_save, sender=WhatsAppNumber, dispatch_uid="audit_number_pre")
def number_before(sender, instance, **kwargs):
    previous = sender.objects.filter(pk=instance.pk).first() if instance.pk else None
    # Compare decrypted values (the ciphertext changes on every save); keep only booleans.
    instance._audit_changed = [
        field
        for field in CREDENTIAL_FIELDS
        if (getattr(previous, field) if previous else "") != (getattr(instance, field) or "")
    ]


@receiver(post_save, sender=WhatsAppNumber, dispatch_uid="audit_number_post")
def number_after(sender, instance, created, **kwargs):
    changed = getattr(instance, "_audit_changed", [])
    if changed:
        audit_record(
            action=Action.CREDENTIALS_CHANGED,
            organization=instance.organization,
            target=instance,
            target_label=f"{instance.name} ({instance.display_phone_number})",
            data={"fields": changed, "created": created},
        )


# --- API keys (issue 7) ----------------------------------------------------------------------


def _connect_api_keys():
    try:
        api_key_model = apps.get_model("accounts", "ApiKey")
    except LookupError:
        return

    def before(sender, instance, **kwargs):
        instance._audit_before = _previous(sender, instance, ["revoked_at"])

    def after(sender, instance, created, **kwargs):
        previous = getattr(instance, "_audit_before", None)
        if created or previous is None:
            action = Action.API_KEY_CREATED
        elif previous["revoked_at"] is None and instance.revoked_at is not None:
            action = Action.API_KEY_REVOKED
        else:
            return
        audit_record(
            action=action,
            organization=instance.organization,
            actor=getattr(instance, "created_by", None) if created else None,
            target=instance,
            data={"prefix": instance.prefix, "scopes": list(instance.scopes or [])},
        )

    pre_save.connect(before, sender=api_key_model, weak=False, dispatch_uid="audit_apikey_pre")
    post_save.connect(after, sender=api_key_model, weak=False, dispatch_uid="audit_apikey_post")


_connect_api_keys()


# --- CSAT (see reports.csat) -----------------------------------------------------------------


@receiver(inbox_signals.chat_changed, dispatch_uid="reports_csat_on_resolve")
def csat_on_resolve(sender, *, chat, change, data=None, **kwargs):
    data = data or {}
    if change != "status" or data.get("status") != Chat.Status.RESOLVED:
        return
    if data.get("reason") in csat.SKIPPED_REASONS:
        return
    tasks.enqueue("reports.tasks.csat_send", chat.pk)


def _csat_accepts(inbound: router.Inbound) -> bool:
    return csat.reply_choice(inbound.message) is not None


def _csat_handle(inbound: router.Inbound) -> None:
    tasks.enqueue("reports.tasks.csat_answer", inbound.message.pk, queue="inbound")


# A tap on a survey button is the survey's answer (the conversation router's CSAT handler).
router.register(
    router.Handler(
        key="csat",
        order=20,
        label=_("satisfaction survey"),
        accepts=_csat_accepts,
        handle=_csat_handle,
    )
)


# --- LGPD erasure (see inbox.contacts.contact_erase) -------------------------------------------


@receiver(inbox_signals.contact_erasing, dispatch_uid="reports_contact_erasing")
def erasure_audit(sender, *, contact, token, actor=None, request=None, erasure=None, **kwargs):
    # In the erasure's transaction, whoever erased (privacy page, admin, API DELETE): the mark
    # and the audit entry commit with the erasure or not at all.
    privacy.erasure_record(
        contact=contact, token=token, actor=actor, request=request, erasure=erasure
    )
