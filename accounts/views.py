from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access, selectors, services
from accounts.forms import (
    INVITATION_SESSION_KEY,
    InvitationForm,
    LanguageForm,
    MembershipRoleForm,
    OrganizationCreateForm,
    OrganizationForm,
)
from accounts.middleware import SESSION_KEY
from accounts.models import Invitation, Membership


def _back(request, default: str):
    target = request.POST.get("next") or request.headers.get("referer") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)  # a URL, never a view name
    return redirect(default)


@require_http_methods(["GET", "POST"])
@login_required
def organization_create(request):
    form = OrganizationCreateForm(request.POST or None)
    if form.is_valid():
        organization = services.organization_create(
            name=form.cleaned_data["name"], owner=request.user, language=request.LANGUAGE_CODE
        )
        request.session[SESSION_KEY] = str(organization.code)
        return redirect("home")
    return render(request, "accounts/organization_create.html", {"form": form})


@require_POST
@login_required
def organization_switch(request, code):
    membership = get_object_or_404(Membership, user=request.user, organization__code=code)
    request.session[SESSION_KEY] = str(membership.organization.code)
    messages.success(request, _("Switched to %(org)s.") % {"org": membership.organization.name})
    return redirect("home")


@require_POST
def language_set(request):
    """Remember the language for the user (or, signed out, in a cookie) and go back."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return HttpResponse(_("Unknown language."), status=400)
    language = form.cleaned_data["language"]
    if request.user.is_authenticated:
        services.user_set_language(user=request.user, language=language)
    response = _back(request, "home")
    response.set_cookie("django_language", language, max_age=365 * 24 * 3600, samesite="Lax")
    return response


@require_http_methods(["GET", "POST"])
@access.section_required("settings")
def settings_organization(request):
    can_edit = access.can_edit(request.membership, "settings")
    form = OrganizationForm(request.POST or None, instance=request.organization)
    if request.method == "POST":
        if not can_edit:
            return HttpResponse(_("Only admins can change settings."), status=403)
        if form.is_valid():
            form.save()
            messages.success(request, _("Settings saved."))
            return redirect("settings_organization")
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "accounts/organization_form.html", {"form": form, "can_edit": can_edit})


@require_GET
@access.section_required("settings")
def member_list(request):
    context = {
        "members": selectors.members_of(request.organization),
        "invitations": selectors.pending_invitations(request.organization),
        "invitation_form": InvitationForm(),
        "role_form": MembershipRoleForm(),
        "can_edit": access.can_edit(request.membership, "settings"),
    }
    return render(request, "accounts/member_list.html", context)


@require_POST
@access.section_required("settings", edit=True)
def member_invite(request):
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_create(
                organization=request.organization,
                invited_by=request.user,
                base_url=request.build_absolute_uri("/").rstrip("/"),
                **form.cleaned_data,
            )
            messages.success(request, _("Invitation sent to %(email)s.") % form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    else:
        messages.error(request, _("Enter a valid email address and role."))
    return redirect("member_list")


@require_POST
@access.section_required("settings", edit=True)
def member_role(request, membership_id):
    membership = get_object_or_404(Membership, pk=membership_id, organization=request.organization)
    form = MembershipRoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(membership=membership, role=form.cleaned_data["role"])
            messages.success(request, _("Role updated."))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    return redirect("member_list")


@require_POST
@access.section_required("settings", edit=True)
def member_remove(request, membership_id):
    membership = get_object_or_404(Membership, pk=membership_id, organization=request.organization)
    try:
        services.membership_remove(membership=membership)
        messages.success(request, _("%(user)s was removed.") % {"user": membership.user})
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("member_list")


@require_POST
@access.section_required("settings", edit=True)
def invitation_revoke(request, code):
    invitation = get_object_or_404(Invitation, code=code, organization=request.organization)
    services.invitation_revoke(invitation=invitation)
    messages.success(request, _("Invitation withdrawn."))
    return redirect("member_list")


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token):
    invitation = Invitation.objects.select_related("organization", "invited_by").filter(token=token)
    invitation = invitation.first()
    if invitation is None:
        return render(
            request,
            "accounts/invitation.html",
            {"error": _("This invitation link is not valid.")},
            status=404,
        )
    if request.method == "POST" and request.user.is_authenticated:
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except services.InvitationError as error:
            return render(request, "accounts/invitation.html", {"error": str(error)}, status=410)
        request.session[SESSION_KEY] = str(membership.organization.code)
        messages.success(request, _("Welcome to %(org)s!") % {"org": membership.organization.name})
        return redirect("home")
    if not invitation.is_pending:
        error = (
            _("This invitation has already been used.")
            if invitation.accepted_at
            else _("This invitation has expired. Ask for a new one.")
        )
        return render(request, "accounts/invitation.html", {"error": error}, status=410)
    if not request.user.is_authenticated:
        request.session[INVITATION_SESSION_KEY] = token
    return render(request, "accounts/invitation.html", {"invitation": invitation})


@require_GET
@access.section_required("billing")
def billing(request):
    return render(
        request,
        "accounts/billing.html",
        {"can_edit": access.can_edit(request.membership, "billing")},
    )


# --- Integrator API keys -----------------------------------------------------------------------


def _api_keys_page(request, form, secret="", status=200):
    from accounts.api_auth import api_keys_of

    context = {
        "keys": api_keys_of(request.organization),
        "form": form,
        "secret": secret,
        "can_edit": access.can_edit(request.membership, "settings"),
    }
    return render(request, "accounts/api_keys.html", context, status=status)


@require_GET
@access.section_required("settings")
def api_key_list(request):
    from accounts.forms import ApiKeyForm

    return _api_keys_page(request, ApiKeyForm())


@require_POST
@access.section_required("settings", edit=True)
def api_key_create(request):
    """Create a key and show its secret this once (rendered, never stored or redirected)."""
    from accounts.api_auth import api_key_create as create
    from accounts.forms import ApiKeyForm

    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _api_keys_page(request, form, status=400)
    _key, secret = create(
        organization=request.organization,
        name=form.cleaned_data["name"],
        scopes=form.scopes(),
        created_by=request.user,
    )
    return _api_keys_page(request, ApiKeyForm(), secret=secret)


@require_POST
@access.section_required("settings", edit=True)
def api_key_revoke(request, code):
    from accounts.api_auth import api_key_revoke as revoke
    from accounts.api_auth import api_keys_of

    key = get_object_or_404(api_keys_of(request.organization), code=code)
    revoke(key=key)
    messages.success(request, _("The key %(name)s was revoked.") % {"name": key.name})
    return redirect("api_key_list")
