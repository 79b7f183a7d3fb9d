"""Back office for WhatsApp Web numbers' Evolution API servers (imported by ``admin.py``)."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin import TenantAdmin
from integrations.models import EvolutionServer


class EvolutionServerForm(forms.ModelForm):
    """The API key is write-only: blank keeps the stored value, and nothing is shown back."""

    api_key = forms.CharField(
        label=_("global API key"), required=False, widget=forms.PasswordInput(render_value=False)
    )

    class Meta:
        model = EvolutionServer
        exclude: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["api_key"] = ""
        if self.instance.pk and self.instance.masked_api_key:
            self.fields["api_key"].help_text = _("Stored: %(masked)s. Leave blank to keep it.") % {
                "masked": self.instance.masked_api_key
            }

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("api_key"):
            if self.instance.pk:
                cleaned["api_key"] = EvolutionServer.objects.get(pk=self.instance.pk).api_key
            else:
                self.add_error("api_key", _("This field is required."))
        return cleaned


@admin.register(EvolutionServer)
class EvolutionServerAdmin(TenantAdmin):
    form = EvolutionServerForm
    list_display = ["name", "base_url", "organization", "created_at"]
    search_fields = ["name", "base_url"]
