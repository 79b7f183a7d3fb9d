from django.db.models import Count, QuerySet

from accounts.models import Invitation, Membership, Organization, User


def membership_for_session(user: User, organization_code: str | None) -> Membership | None:
    """The membership for the organization chosen in this session, or the user's first one."""
    return memberships_for_session(user, organization_code)[0]


def memberships_for_session(
    user: User, organization_code: str | None
) -> tuple[Membership | None, list[Membership]]:
    """The membership for the organization chosen in this session (or the user's first one)
    and all of the user's memberships (the organization switcher on every page), in one query:
    a member belongs to a few organizations. Each membership's ``user`` is ``user``, so reading
    it costs no query."""
    memberships = list(
        Membership.objects.select_related("organization")
        .filter(user=user)
        .order_by("created_at", "pk")
    )
    for membership in memberships:
        membership.user = user
    chosen = next(
        (
            m
            for m in memberships
            if organization_code and str(m.organization.code) == organization_code
        ),
        None,
    )
    return chosen or (memberships[0] if memberships else None), memberships


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
