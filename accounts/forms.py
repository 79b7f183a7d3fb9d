import contextlib

from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.core import context as allauth_context
from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts import services
from accounts.models import Membership, Organization, Role

TIME_ZONES = [
    "America/Sao_Paulo",
    "America/Manaus",
    "America/Belem",
    "America/Fortaleza",
    "America/Recife",
    "America/Cuiaba",
    "America/Porto_Velho",
    "America/Rio_Branco",
    "America/Noronha",
    "America/Argentina/Buenos_Aires",
    "America/Santiago",
    "America/Bogota",
    "America/Lima",
    "America/Mexico_City",
    "America/New_York",
    "Europe/Lisbon",
    "Europe/Madrid",
    "UTC",
]

INVITATION_SESSION_KEY = "invitation_token"


class SignupForm(AllauthSignupForm):
    """Sign-up creates the user's organization, unless they arrive through an invitation."""

    name = forms.CharField(label=_("Your name"), max_length=150)
    organization_name = forms.CharField(
        label=_("Clinic or business name"), max_length=120, required=False
    )

    field_order = ["name", "email", "password1", "password2", "organization_name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = allauth_context.request  # allauth does not hand the request to signup forms
        self.invitation_token = request.session.get(INVITATION_SESSION_KEY) if request else None
        if self.invitation_token:
            del self.fields["organization_name"]

    def clean_organization_name(self):
        value = self.cleaned_data.get("organization_name", "").strip()
        if not value:
            raise forms.ValidationError(_("Tell us the name of your clinic or business."))
        return value

    def save(self, request):
        user = super().save(request)
        user.name = self.cleaned_data["name"].strip()
        user.save(update_fields=["name"])
        if self.invitation_token:
            # A stale invitation is explained on its page when they come back to it.
            with contextlib.suppress(services.InvitationError):
                services.invitation_accept(token=self.invitation_token, user=user)
            request.session.pop(INVITATION_SESSION_KEY, None)
        else:
            services.organization_create(
                name=self.cleaned_data["organization_name"],
                owner=user,
                language=getattr(request, "LANGUAGE_CODE", settings.LANGUAGE_CODE),
            )
        return user


class OrganizationForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=[(tz, tz) for tz in TIME_ZONES])

    class Meta:
        model = Organization
        fields = ["name", "time_zone", "language", "currency", "usd_rate", "require_mfa"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("currency", "usd_rate"):  # left out: unchanged
            self.fields[name].required = False

    def clean(self):
        data = super().clean()
        for name in ("currency", "usd_rate"):
            if not data.get(name):
                data[name] = getattr(self.instance, name)
        return data


class OrganizationCreateForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name"]
        labels = {"name": _("Clinic or business name")}


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.AGENT)


class MembershipRoleForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=settings.LANGUAGES)


SENSITIVE_API_RESOURCES = {"privacy"}


# What each API scope's row is called on the keys page (the resource names stay English in
# the API itself).
API_RESOURCE_LABELS = {
    "numbers": _("WhatsApp numbers"),
    "templates": _("Templates"),
    "contacts": _("Contacts"),
    "chats": _("Chats"),
    "messages": _("Messages"),
    "media": _("Media files"),
    "webhooks": _("Webhooks"),
    "assistants": _("Assistants"),
    "campaigns": _("Campaigns"),
    "segments": _("Segments"),
    "reports": _("Reports"),
    "privacy": _("Privacy (LGPD)"),
    "appointments": _("Appointments"),
    "flows": _("Flows"),
}


class ApiKeyForm(forms.Form):
    """A new integrator API key: a name and, per resource, read or write access."""

    name = forms.CharField(
        label=_("Name"), max_length=80, help_text=_("e.g. the system that uses it")
    )

    def __init__(self, *args, **kwargs):
        from accounts.models import API_RESOURCES

        super().__init__(*args, **kwargs)
        choices = [
            ("", _("No access")),
            ("read", pgettext_lazy("API access level", "Read")),
            ("write", _("Read and write")),
        ]
        for resource in API_RESOURCES:
            # Personal data in bulk (LGPD exports, erasure) only when asked for explicitly.
            initial = "" if resource in SENSITIVE_API_RESOURCES else "read"
            self.fields[f"scope_{resource}"] = forms.ChoiceField(
                label=API_RESOURCE_LABELS.get(resource, resource.capitalize()),
                choices=choices,
                required=False,
                initial=initial,
            )

    def scopes(self) -> list[str]:
        from accounts.models import API_RESOURCES

        return [
            f"{resource}:{self.cleaned_data[f'scope_{resource}']}"
            for resource in API_RESOURCES
            if self.cleaned_data.get(f"scope_{resource}")
        ]
