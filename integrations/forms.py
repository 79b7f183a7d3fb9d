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
        elif kind == "button_reply":
            spec.update(reply_id=data["reply_id"], title=data["text"])
        elif kind == "reaction":
            spec.update(message_id=data["message_id"], emoji=data["emoji"])
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
