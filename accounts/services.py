"""Changes to organizations, memberships and invitations. Views validate; these act atomically."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts.models import Invitation, Membership, Organization, Role, User
from kernel import realtime


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def organization_create(*, name: str, owner: User, **fields) -> Organization:
    """Create an organization and make ``owner`` its admin."""
    organization = Organization.objects.create(name=name, slug=_unique_slug(name), **fields)
    Membership.objects.create(user=owner, organization=organization, role=Role.ADMIN)
    return organization


def organization_update(*, organization: Organization, **fields) -> Organization:
    for key, value in fields.items():
        setattr(organization, key, value)
    organization.save(update_fields=list(fields))
    return organization


def _ensure_an_admin_remains(membership: Membership, new_role: str | None) -> None:
    if membership.role != Role.ADMIN or new_role == Role.ADMIN:
        return
    admins = Membership.objects.filter(organization=membership.organization, role=Role.ADMIN)
    if admins.exclude(pk=membership.pk).count() == 0:
        raise ValidationError(_("An organization needs at least one admin."))


def membership_group(membership_id: int) -> str:
    """The live-event group of every socket opened for this membership (``inbox.consumers``)."""
    return f"member.{membership_id}"


@receiver(post_save, sender=Membership, dispatch_uid="membership-closes-live-sockets")
@receiver(post_delete, sender=Membership, dispatch_uid="membership-deleted-closes-live-sockets")
def _close_live_sockets(sender, instance: Membership, created: bool = False, **kwargs) -> None:
    """A membership changed (its role: it has no other field) or went away, by any path
    (these services, the admin, an organization or user deleted): after commit, close the
    member's open websockets, which joined groups for the old role. Pages need nothing: every
    request reads the membership again, so the next one already sees the change."""
    if not created:
        realtime.publish_on_commit(membership_group(instance.pk), {"type": "member.revoked"})


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    _ensure_an_admin_remains(membership, role)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    _ensure_an_admin_remains(membership, None)
    membership.delete()


def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: User, base_url: str
) -> Invitation:
    email = email.strip().lower()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError(_("%(email)s is already a member.") % {"email": email})
    Invitation.objects.filter(
        organization=organization, email__iexact=email, accepted_at__isnull=True
    ).delete()
    invitation = Invitation.objects.create(
        organization=organization, email=email, role=role, invited_by=invited_by
    )
    link = base_url + reverse("invitation_accept", args=[invitation.token])
    with translation.override(organization.language):
        context = {"invitation": invitation, "link": link}
        send_mail(
            subject=_("You are invited to %(org)s on Porfin") % {"org": organization.name},
            message=render_to_string("accounts/email/invitation.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    return invitation


class InvitationError(Exception):
    pass


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Make ``user`` a member. An invitation works once, before it expires."""
    invitation = Invitation.objects.select_for_update().filter(token=token).first()
    if invitation is None:
        raise InvitationError(_("This invitation link is not valid."))
    if invitation.accepted_at is not None:
        raise InvitationError(_("This invitation has already been used."))
    if invitation.is_expired:
        raise InvitationError(_("This invitation has expired. Ask for a new one."))
    membership, created = Membership.objects.get_or_create(
        user=user, organization=invitation.organization, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitation_revoke(*, invitation: Invitation) -> None:
    invitation.delete()


def user_set_language(*, user: User, language: str) -> None:
    user.language = language
    user.save(update_fields=["language"])
