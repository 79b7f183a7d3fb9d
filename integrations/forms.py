import base64

from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.models import WhatsAppNumber

CUSTOMER_TYPES = [
    ("text", _("Text")),
    ("image", _("Image")),
    ("document", _("Document")),
    ("audio", _("Voice note")),
    ("location", _("Location")),
    ("button_reply", _("Button reply")),
    ("list_reply", _("List menu choice")),
    ("reaction", _("Reaction")),
]


class SandboxMessageForm(forms.Form):
    number = forms.ModelChoiceField(label=_("To number"), queryset=WhatsAppNumber.objects.none())
    phone = forms.RegexField(
        label=_("Customer phone (digits with country code)"),
        regex=r"^\d{8,15}$",
        initial="5511999990000",
        error_messages={"invalid": _("Use 8 to 15 digits, country code first, no + or spaces.")},
    )
    profile_name = forms.CharField(
        label=_("Customer name"), max_length=100, initial="Cliente Teste"
    )
    type = forms.ChoiceField(label=_("Type"), choices=CUSTOMER_TYPES)
    text = forms.CharField(
        label=_("Text or caption"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    file = forms.FileField(label=_("File"), required=False)
    latitude = forms.FloatField(label=_("Latitude"), required=False, min_value=-90, max_value=90)
    longitude = forms.FloatField(
        label=_("Longitude"), required=False, min_value=-180, max_value=180
    )
    reply_id = forms.CharField(label=_("Button id"), required=False, max_length=256)
    message_id = forms.CharField(label=_("wamid reacted to"), required=False, max_length=128)
    emoji = forms.CharField(label=_("Emoji"), required=False, max_length=8)
    context_id = forms.CharField(required=False, max_length=128, widget=forms.HiddenInput)

    def __init__(self, *args, numbers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["number"].queryset = numbers
        if len(numbers) == 1:
            self.fields["number"].initial = numbers[0]

    def clean(self):
        data = super().clean()
        kind = data.get("type")
        required = {
            "text": ["text"],
            "image": ["file"],
            "document": ["file"],
            "audio": ["file"],
            "location": ["latitude", "longitude"],
            "button_reply": ["reply_id", "text"],
            "list_reply": ["reply_id", "text"],
            "reaction": ["message_id", "emoji"],
        }.get(kind, [])
        for name in required:
            if data.get(name) in (None, ""):
                self.add_error(name, _("Required for this type of message."))
        return data

    def to_spec(self) -> dict:
        data = self.cleaned_data
        spec = {"from": data["phone"], "profile_name": data["profile_name"], "type": data["type"]}
        kind = data["type"]
        if kind == "text":
            spec["text"] = data["text"]
        elif kind in ("image", "document", "audio"):
            upload = data["file"]
            spec.update(
                data_base64=base64.b64encode(upload.read()).decode(),
                mime_type=upload.content_type or "application/octet-stream",
                filename=upload.name,
                caption=data["text"],
            )
            if kind == "audio":
                spec["voice"] = True
        elif kind == "location":
            spec.update(latitude=data["latitude"], longitude=data["longitude"], name=data["text"])
        elif kind in ("button_reply", "list_reply"):
            spec.update(reply_id=data["reply_id"], title=data["text"])
        elif kind == "reaction":
            spec.update(message_id=data["message_id"], emoji=data["emoji"])
        if data.get("context_id"):
            spec["context_id"] = data["context_id"]  # a tap answers the menu it was on
        return spec


class WebhookSubscriptionForm(forms.Form):
    """An integrator's URL and the events it receives (see ``integrations.outgoing``)."""

    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=_("Events"), widget=forms.CheckboxSelectMultiple, choices=()
    )

    def __init__(self, *args, **kwargs):
        from integrations.models import WebhookSubscription

        super().__init__(*args, **kwargs)
        self.fields["events"].choices = WebhookSubscription.Event.choices


# --- Settings › Numbers -----------------------------------------------------------------------


class NumberCreateForm(forms.Form):
    """Connect a Cloud API number (credentials checked live on save) or a sandbox one."""

    provider = forms.ChoiceField(label=_("Connection"), widget=forms.RadioSelect, choices=())
    name = forms.CharField(
        label=_("Name"), max_length=80, help_text=_("How your team sees it, e.g. Reception.")
    )
    phone_number_id = forms.RegexField(
        label=_("Phone number ID"),
        regex=r"^\d{1,64}$",
        required=False,
        help_text=_("Meta › WhatsApp › API Setup: the number's ID (digits), not the phone number."),
        error_messages={"invalid": _("The phone number ID has digits only.")},
    )
    waba_id = forms.RegexField(
        label=_("WhatsApp Business Account ID"),
        regex=r"^\d{1,64}$",
        required=False,
        error_messages={"invalid": _("The WhatsApp Business Account ID has digits only.")},
    )
    access_token = forms.CharField(
        label=_("Access token"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("A System User's permanent token with whatsapp_business_messaging."),
    )
    app_secret = forms.CharField(
        label=_("App secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Meta app › Settings › Basic; it signs the webhooks Meta sends."),
    )

    CLOUD_FIELDS = ("phone_number_id", "waba_id", "access_token", "app_secret")

    def __init__(self, *args, sandbox: bool, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(WhatsAppNumber.Provider.CLOUD_API, _("WhatsApp Cloud API (Meta)"))]
        if sandbox:
            choices.append((WhatsAppNumber.Provider.SANDBOX, _("Sandbox (try it without Meta)")))
        self.fields["provider"].choices = choices
        self.fields["provider"].initial = WhatsAppNumber.Provider.CLOUD_API

    def clean(self):
        data = super().clean()
        if data.get("provider") == WhatsAppNumber.Provider.CLOUD_API:
            for name in self.CLOUD_FIELDS:
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, _("Required for a Cloud API number."))
            pnid = data.get("phone_number_id")
            if pnid and WhatsAppNumber.objects.filter(phone_number_id=pnid).exists():
                self.add_error("phone_number_id", _("This number is already connected."))
        return data


class NumberEditForm(forms.Form):
    """Rename; rotate the access token or app secret (blank keeps the current one)."""

    name = forms.CharField(label=_("Name"), max_length=80)
    access_token = forms.CharField(
        label=_("New access token"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Leave blank to keep the current one. A new token is checked before saving."),
    )
    app_secret = forms.CharField(
        label=_("New app secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Leave blank to keep the current one."),
    )
    daily_cap = forms.IntegerField(
        label=_("Daily cap"),
        required=False,
        min_value=1,
        max_value=1_000_000,
        help_text=_(
            "Most campaign messages this number sends a day; past it a campaign waits for the "
            "next day. Blank: the default (WhatsApp Web numbers 200; Cloud API numbers their "
            "Meta messaging tier, none when unknown or unlimited)."
        ),
    )

    def __init__(self, *args, credentials: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not credentials:
            del self.fields["access_token"]
            del self.fields["app_secret"]
