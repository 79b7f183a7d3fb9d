from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet

from accounts.models import Invitation, Membership, Organization, User


def membership_for_session(user: User, organization_code: str | None) -> Membership | None:
    """The membership for the organization chosen in this session, or the user's first one."""
    memberships = Membership.objects.select_related("organization").filter(user=user)
    if organization_code:
        try:
            chosen = memberships.filter(organization__code=organization_code).first()
        except ValidationError:  # a malformed code in an old session
            chosen = None
        if chosen is not None:
            return chosen
    return memberships.order_by("created_at").first()


def memberships_for_user(user: User) -> QuerySet[Membership]:
    return Membership.objects.select_related("organization").filter(user=user)


def members_of(organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.select_related("user")
        .filter(organization=organization)
        .order_by("user__name", "user__email")
    )


def pending_invitations(organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization, accepted_at__isnull=True)


def role_counts(organization: Organization) -> dict[str, int]:
    rows = members_of(organization).values("role").annotate(n=Count("id")).order_by()
    return {row["role"]: row["n"] for row in rows}


def user_has_totp(user: User) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
