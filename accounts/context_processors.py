from accounts import access, selectors


def tenant(request):
    """The shell's navigation needs the current organization, the switcher and the role."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None)
    return {
        "current_organization": getattr(request, "organization", None),
        "current_membership": membership,
        "user_memberships": selectors.memberships_for_user(user),
        "nav": {section: access.can_view(membership, section) for section in access.SECTIONS},
    }
