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
