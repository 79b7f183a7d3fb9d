import re

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.access import Level, level_for
from accounts.models import User
from inbox.models import Chat, Contact, QuickReply
from integrations.models import MessageTemplate

ATTACHMENT_MAX_BYTES = 16 * 1024 * 1024  # Cloud API: video/audio 16 MB (documents 100 MB)


class ComposerForm(forms.Form):
    text = forms.CharField(
        required=False, max_length=4096, widget=forms.Textarea(attrs={"rows": 1})
    )
    file = forms.FileField(required=False)
    reply_to = forms.UUIDField(required=False)

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload and upload.size > ATTACHMENT_MAX_BYTES:
            raise forms.ValidationError(_("Attachments can be at most 16 MB."))
        return upload

    def clean(self):
        data = super().clean()
        if not data.get("text", "").strip() and not data.get("file"):
            raise forms.ValidationError(_("Write a message or attach a file."))
        if data.get("file") and len(data.get("text", "")) > 1024:
            raise forms.ValidationError(_("A caption can be at most 1,024 characters."))
        return data


class NoteForm(forms.Form):
    body = forms.CharField(max_length=4096, widget=forms.Textarea(attrs={"rows": 2}))


class ReactionForm(forms.Form):
    message = forms.UUIDField()
    emoji = forms.CharField(max_length=8, required=False)


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Chat.Status.choices)


class TagsForm(forms.Form):
    tags = forms.CharField(required=False, max_length=500)

    def clean_tags(self):
        return [tag for tag in re.split(r"[,;]", self.cleaned_data["tags"]) if tag.strip()]


class AssignForm(forms.Form):
    """Assign to a teammate, to oneself, or nobody. Agents may only take a chat for themselves."""

    assignee = forms.ModelChoiceField(queryset=User.objects.none(), required=False)

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.membership = membership
        self.fields["assignee"].queryset = User.objects.filter(
            memberships__organization=membership.organization
        )

    def clean_assignee(self):
        assignee = self.cleaned_data["assignee"]
        if level_for(self.membership, "chats") == Level.ASSIGNED and assignee not in (
            None,
            self.membership.user,
        ):
            raise forms.ValidationError(_("Agents can only assign chats to themselves."))
        return assignee


class ContactForm(forms.ModelForm):
    tags = forms.CharField(
        label=_("Contact tags"), required=False, help_text=_("Separated by commas")
    )

    class Meta:
        model = Contact
        fields = ["name", "email", "language", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["tags"] = ", ".join(self.instance.tags or [])

    def clean_tags(self):
        return sorted(
            {t.strip().lower()[:40] for t in self.cleaned_data["tags"].split(",") if t.strip()}
        )


class QuickReplyForm(forms.ModelForm):
    personal = forms.BooleanField(
        label=_("Only for me"),
        required=False,
        help_text=_("Personal replies are yours alone; shared ones serve the whole team."),
    )

    class Meta:
        model = QuickReply
        fields = ["shortcut", "text"]
        widgets = {"text": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, organization, can_share=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        if not can_share:  # without full inbox access, one's own replies only
            self.fields["personal"].initial = True
            self.fields["personal"].disabled = True

    def clean_shortcut(self):
        shortcut = self.cleaned_data["shortcut"].lower()
        if QuickReply.objects.filter(organization=self.organization, shortcut=shortcut).exists():
            raise forms.ValidationError(_("This shortcut is already in use."))
        return shortcut


def _body_parameter_count(components) -> int:
    for component in components or []:
        if component.get("type", "").upper() == "BODY":
            return len(set(re.findall(r"\{\{\s*([\w]+)\s*\}\}", component.get("text", ""))))
    return 0


class TemplateSendForm(forms.Form):
    """Pick an approved template of the chat's number and fill its body parameters."""

    template = forms.ModelChoiceField(queryset=MessageTemplate.objects.none())
    parameters = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, chat, **kwargs):
        super().__init__(*args, **kwargs)
        self.chat = chat
        self.fields["template"].queryset = self.approved(chat)
        self.parameter_values = []
        if self.data:
            self.parameter_values = [v.strip() for v in self.data.getlist("param")]

    @staticmethod
    def approved(chat):
        return MessageTemplate.objects.filter(number_id=chat.number_id, status__iexact="APPROVED")

    @classmethod
    def templates_by_name(cls, chat) -> dict:
        return {
            t.name: t.components for t in MessageTemplate.objects.filter(number_id=chat.number_id)
        }

    def clean(self):
        data = super().clean()
        template = data.get("template")
        if template is None:
            return data
        expected = _body_parameter_count(template.components)
        values = self.parameter_values[:expected]
        if len(values) != expected or any(not v for v in values):
            raise forms.ValidationError(
                _("This template needs %(n)d parameter(s); fill them all.") % {"n": expected}
            )
        self.parameter_values = values
        return data

    def template_content(self) -> dict:
        template = self.cleaned_data["template"]
        content = {"name": template.name, "language": {"code": template.language}}
        if self.parameter_values:
            content["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": v} for v in self.parameter_values],
                }
            ]
        return content


class SnoozeForm(forms.Form):
    until = forms.DateTimeField(
        label=_("Snooze until"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )


class PriorityForm(forms.Form):
    priority = forms.TypedChoiceField(choices=Chat.Priority.choices, coerce=int)


class SendLaterForm(forms.Form):
    text = forms.CharField(max_length=4096)
    send_at = forms.DateTimeField(
        label=_("Send at"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )


class SavedViewForm(forms.Form):
    name = forms.CharField(label=_("View name"), max_length=60)
    query = forms.CharField(required=False, max_length=500)


class RichMessageForm(forms.Form):
    """The composer's other kinds: a location, a contact card, reply buttons or a list. Builds
    the Cloud API object that ``services.message_send`` stores and sends."""

    KINDS = [
        ("location", _("Location")),
        ("contacts", _("Contact card")),
        ("buttons", _("Reply buttons")),
        ("list", _("List of options")),
    ]
    kind = forms.ChoiceField(label=_("Send"), choices=KINDS)
    body = forms.CharField(label=_("Text"), required=False, max_length=1024)
    latitude = forms.FloatField(label=_("Latitude"), required=False, min_value=-90, max_value=90)
    longitude = forms.FloatField(
        label=_("Longitude"), required=False, min_value=-180, max_value=180
    )
    place = forms.CharField(label=_("Place name"), required=False, max_length=100)
    address = forms.CharField(label=_("Address"), required=False, max_length=200)
    contact_name = forms.CharField(label=_("Contact name"), required=False, max_length=100)
    contact_phone = forms.CharField(label=_("Contact phone"), required=False, max_length=30)
    options = forms.CharField(
        label=_("Options, one a line"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Buttons: up to 3, 20 characters each. List: up to 10, “title | description”."),
    )
    list_button = forms.CharField(label=_("List button"), required=False, max_length=20)

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        lines = [line.strip() for line in (data.get("options") or "").splitlines() if line.strip()]
        if kind == "location" and (data.get("latitude") is None or data.get("longitude") is None):
            raise forms.ValidationError(_("Give the latitude and the longitude."))
        if kind == "contacts" and not (data.get("contact_name") and data.get("contact_phone")):
            raise forms.ValidationError(_("Give the contact's name and phone."))
        if kind in ("buttons", "list") and not (data.get("body") or "").strip():
            raise forms.ValidationError(_("Write the text above the options."))
        if kind == "buttons" and not 1 <= len(lines) <= 3:
            raise forms.ValidationError(_("Reply buttons: one to three options."))
        if kind == "buttons" and any(len(line) > 20 for line in lines):
            raise forms.ValidationError(_("A button's text has at most 20 characters."))
        if kind == "list" and not 1 <= len(lines) <= 10:
            raise forms.ValidationError(_("A list: one to ten options."))
        if kind == "list" and not data.get("list_button"):
            raise forms.ValidationError(_("Name the button that opens the list."))
        data["lines"] = lines
        return data

    def message(self) -> tuple[str, object]:
        """(message type, Cloud API content)."""
        data = self.cleaned_data
        kind = data["kind"]
        if kind == "location":
            content = {"latitude": data["latitude"], "longitude": data["longitude"]}
            for key, field in (("name", "place"), ("address", "address")):
                if data.get(field):
                    content[key] = data[field]
            return "location", content
        if kind == "contacts":
            name = data["contact_name"].strip()
            card = {
                "name": {"formatted_name": name, "first_name": name.split()[0]},
                "phones": [{"phone": data["contact_phone"].strip(), "type": "CELL"}],
            }
            return "contacts", [card]
        body = {"text": data["body"].strip()}
        if kind == "buttons":
            buttons = [
                {"type": "reply", "reply": {"id": f"b{i}", "title": title}}
                for i, title in enumerate(data["lines"], start=1)
            ]
            return "interactive", {"type": "button", "body": body, "action": {"buttons": buttons}}
        rows = []
        for i, line in enumerate(data["lines"], start=1):
            title, _sep, description = line.partition("|")
            row = {"id": f"r{i}", "title": title.strip()[:24]}
            if description.strip():
                row["description"] = description.strip()[:72]
            rows.append(row)
        section = {"title": data["list_button"][:24], "rows": rows}
        action = {"button": data["list_button"], "sections": [section]}
        return "interactive", {"type": "list", "body": body, "action": action}
