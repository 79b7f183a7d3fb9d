from accounts import access, selectors


def tenant(request):
    """The shell's navigation needs the current organization, the switcher and the role."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None)
    memberships = getattr(request, "memberships", None)  # TenantMiddleware read them already
    return {
        "current_organization": getattr(request, "organization", None),
        "current_membership": membership,
        "user_memberships": selectors.memberships_for_user(user)
        if memberships is None
        else memberships,
        "nav": {section: access.can_view(membership, section) for section in access.SECTIONS},
    }
