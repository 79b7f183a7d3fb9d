"""Teams: named groups of members who share chats, and each member's capacity for the
auto-assignment that ``inbox.teamwork`` runs."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from accounts import access
from accounts.models import Membership, Team, User


class TeamForm(forms.ModelForm):
    members = forms.ModelMultipleChoiceField(
        label=_lazy("Members"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Team
        fields = ["name", "members", "auto_assign"]

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["members"].queryset = User.objects.filter(
            memberships__organization=organization
        ).order_by("name", "email")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = Team.objects.filter(organization=self.organization, name__iexact=name)
        if taken.exclude(pk=self.instance.pk).exists():
            raise ValidationError(_("A team with this name already exists."))
        return name


def team_save(*, form: TeamForm) -> Team:
    with transaction.atomic():
        team = form.save(commit=False)
        team.organization = form.organization
        team.save()
        form.save_m2m()
    return team


def capacity_set(*, membership: Membership, value: int) -> None:
    if value < 0 or value > 1000:
        raise ValidationError(_("Give a number from 0 to 1000."))
    Membership.objects.filter(pk=membership.pk).update(max_open_chats=value)


# --- Pages (settings › teams) ---------------------------------------------------------------------


def _page(request, new_form=None, status=200):
    org = request.organization
    teams = Team.objects.filter(organization=org).prefetch_related("members")
    context = {
        "teams": [
            (team, TeamForm(instance=team, organization=org, prefix=str(team.code)))
            for team in teams
        ],
        "new_form": new_form or TeamForm(organization=org, prefix="new"),
        "members": Membership.objects.filter(organization=org)
        .select_related("user")
        .order_by("user__name", "user__email"),
        "can_edit": access.can_edit(request.membership, "settings"),
    }
    return render(request, "accounts/team_list.html", context, status=status)


@require_GET
@access.section_required("settings")
def team_list(request):
    return _page(request)


@require_POST
@access.section_required("settings", edit=True)
def team_create(request):
    form = TeamForm(request.POST, organization=request.organization, prefix="new")
    if not form.is_valid():
        return _page(request, new_form=form, status=400)
    try:
        team_save(form=form)
    except IntegrityError:
        messages.error(request, _("A team with this name already exists."))
        return redirect("team_list")
    messages.success(request, _("Team saved."))
    return redirect("team_list")


@require_POST
@access.section_required("settings", edit=True)
def team_update(request, code):
    team = get_object_or_404(Team, organization=request.organization, code=code)
    form = TeamForm(
        request.POST, instance=team, organization=request.organization, prefix=str(code)
    )
    if form.is_valid():
        team_save(form=form)
        messages.success(request, _("Team saved."))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("team_list")


@require_POST
@access.section_required("settings", edit=True)
def team_delete(request, code):
    get_object_or_404(Team, organization=request.organization, code=code).delete()
    messages.success(request, _("Team deleted."))
    return redirect("team_list")


@require_POST
@access.section_required("settings", edit=True)
def member_capacity(request, membership_id):
    membership = get_object_or_404(Membership, organization=request.organization, pk=membership_id)
    try:
        capacity_set(membership=membership, value=int(request.POST.get("max_open_chats", "")))
        messages.success(request, _("Saved."))
    except (ValueError, ValidationError):
        messages.error(request, _("Give a number from 0 to 1000."))
    return redirect("team_list")
