"""Forms of the WhatsApp Web (QR code) pages."""

from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.models import EvolutionServer


class WebNumberForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80, initial=_("WhatsApp Web"))
    server = forms.ModelChoiceField(
        label=_("Evolution API server"),
        queryset=EvolutionServer.objects.none(),
        required=False,
        empty_label=_("The installation's server"),
    )
    daily_cap = forms.IntegerField(
        label=_("Daily cap (business-initiated messages)"),
        required=False,
        min_value=1,
        max_value=5000,
        help_text=_("Empty: the installation's default. Bulk sending can get the number banned."),
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        servers = EvolutionServer.objects.filter(organization=organization)
        self.fields["server"].queryset = servers
        if not servers.exists():
            del self.fields["server"]


class WebCustomerForm(forms.Form):
    """A customer's text to a WhatsApp Web number, from the sandbox phone."""

    phone = forms.RegexField(
        label=_("Customer phone (digits with country code)"),
        regex=r"^\d{8,15}$",
        initial="5511999990000",
        error_messages={"invalid": _("Use 8 to 15 digits, country code first, no + or spaces.")},
    )
    name = forms.CharField(label=_("Customer name"), max_length=100, initial="Cliente Teste")
    text = forms.CharField(label=_("Message"), max_length=4096, widget=forms.Textarea({"rows": 2}))


class WebTextForm(forms.Form):
    """A saved message text for campaigns on a WhatsApp Web number."""

    name = forms.SlugField(
        label=_("Name"),
        max_length=100,
        help_text=_("Lowercase letters, digits and hyphens, e.g. appointment-reminder."),
    )
    body = forms.CharField(
        label=_("Text"),
        max_length=1024,
        widget=forms.Textarea({"rows": 3}),
        help_text=_("{{1}}, {{2}}… are filled for each contact when the campaign is set up."),
    )
