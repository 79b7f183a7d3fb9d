"""Forms of automation rules, drip programs (steps, question bank) and the public opt-in form."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from campaigns import drips, services
from campaigns.models import (
    Automation,
    Campaign,
    DripProgram,
    DripQuestion,
    DripStep,
    extra_actions,
)
from integrations.models import MessageTemplate, WebhookSubscription, WhatsAppNumber

T = Automation.Trigger
TIME = forms.TimeInput(attrs={"type": "time"})


def _comma_list(value: str) -> list[str]:
    return services.clean_tags(part for part in (value or "").split(","))


class CommaListField(forms.CharField):
    """A list of words typed as "a, b, c"."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return _comma_list(super().to_python(value))


class AttributesField(forms.CharField):
    """``name=value`` per line ↔ a dict."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        if isinstance(value, dict):
            return "\n".join(f"{k}={v}" for k, v in value.items())
        return value

    def to_python(self, value):
        result = {}
        for number, line in enumerate((value or "").splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, expected = line.partition("=")
            if not sep or not name.strip():
                raise forms.ValidationError(
                    _("Line %(line)d: write name=value.") % {"line": number}
                )
            result[name.strip()] = expected.strip()
        return result


def _templates(organization):
    return MessageTemplate.objects.filter(
        organization=organization, status="APPROVED"
    ).select_related("number")


class AutomationForm(forms.ModelForm):
    keywords = forms.CharField(
        label=_("Keywords"),
        required=False,
        max_length=500,
        help_text=Automation._meta.get_field("keywords").help_text,
    )
    condition_tags = CommaListField(label=_("Contact has all tags"), required=False)
    condition_exclude_tags = CommaListField(label=_("Contact has none of the tags"), required=False)
    condition_attributes = AttributesField(
        label=_("Attributes equal"), required=False, help_text=_("One name=value per line.")
    )
    action_tags = CommaListField(label=_("Add tags"), required=False)

    class Meta:
        model = Automation
        fields = [
            "name",
            "is_active",
            "trigger",
            "keywords",
            "trigger_tag",
            "trigger_campaign",
            "hours",
            "date_attribute",
            "condition_tags",
            "condition_exclude_tags",
            "condition_attributes",
            "window_start",
            "window_end",
            "number",
            "action_tags",
            "action_assignee",
            "action_ai",
            "action_text",
            "action_template",
            "action_drip",
            "action_webhook",
            "max_runs",
            "per_hours",
        ]
        widgets = {
            "window_start": TIME,
            "window_end": TIME,
            "action_text": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["trigger_campaign"].queryset = Campaign.objects.filter(
            organization=organization
        )
        self.fields["number"].queryset = WhatsAppNumber.objects.filter(organization=organization)
        self.fields["action_assignee"].queryset = User.objects.filter(
            memberships__organization=organization
        ).order_by("name")
        self.fields["action_template"].queryset = _templates(organization)
        self.fields["action_drip"].queryset = DripProgram.objects.filter(organization=organization)
        self.fields["action_webhook"].queryset = WebhookSubscription.objects.filter(
            organization=organization
        )
        self.fields["action_text"].help_text = _(
            "{{name}}, {{first_name}} and {{attribute:x}} are replaced. "
            "Sent only while the 24-hour window is open; otherwise the template is sent."
        )
        chosen = self.instance.action_extra or {}
        for extra in extra_actions():  # actions other apps registered (flows: start a flow)
            self.fields[f"extra_{extra.key}"] = forms.ChoiceField(
                label=extra.label,
                required=False,
                choices=[("", "---------"), *extra.choices(organization.pk)],
                initial=chosen.get(extra.key, ""),
            )

    def extra_action_fields(self):
        return [self[f"extra_{extra.key}"] for extra in extra_actions()]

    def clean(self):
        data = super().clean()
        trigger = data.get("trigger")
        required = {
            T.KEYWORD: ("keywords", _("Give at least one keyword.")),
            T.TAG_ADDED: ("trigger_tag", _("Which tag?")),
            T.DATE_AHEAD: ("date_attribute", _("Which attribute holds the date?")),
        }
        if trigger in required:
            field, message = required[trigger]
            if not (data.get(field) or "").strip():
                self.add_error(field, message)
        if trigger in (T.NO_REPLY, T.DATE_AHEAD) and not data.get("hours"):
            self.add_error("hours", _("Give a number of hours."))
        if bool(data.get("window_start")) != bool(data.get("window_end")):
            self.add_error("window_end", _("Give both the start and the end of the window."))
        actions = ("action_tags", "action_assignee", "action_ai", "action_text")
        actions += ("action_template", "action_drip", "action_webhook")
        extra = {
            e.key: data.get(f"extra_{e.key}") for e in extra_actions() if data.get(f"extra_{e.key}")
        }
        self.instance.action_extra = extra
        if not any(data.get(name) for name in actions) and not extra:
            raise forms.ValidationError(_("Choose at least one action."))
        if not data.get("max_runs"):
            self.add_error("max_runs", _("Allow at least one run."))
        return data


class DripProgramForm(forms.ModelForm):
    class Meta:
        model = DripProgram
        fields = [
            "name",
            "kind",
            "is_active",
            "number",
            "send_time",
            "template",
            "topics",
            "form_enabled",
            "form_intro",
        ]
        widgets = {"send_time": TIME, "form_intro": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["number"].queryset = WhatsAppNumber.objects.filter(
            organization=organization, is_active=True
        )
        self.fields["template"].queryset = _templates(organization)

    def clean(self):
        data = super().clean()
        template, number = data.get("template"), data.get("number")
        if template and number and template.number_id != number.pk:
            self.add_error("template", _("Choose a template of the selected number."))
        elif (
            template
            and data.get("kind") == DripProgram.Kind.QUESTION_OF_THE_DAY
            and not services.template_slots(template)["body"]
        ):
            self.add_error(
                "template",
                _(
                    "This template has no variable for the question: its text would arrive "
                    "without it. Choose a template whose body has a variable, e.g. {{1}}."
                ),
            )
        return data


class DripStepForm(forms.ModelForm):
    class Meta:
        model = DripStep
        fields = ["position", "delay_days", "delay_hours", "send_time", "text", "template"]
        widgets = {"send_time": TIME, "text": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, program: DripProgram, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = _templates(program.organization).filter(
            number=program.number
        )

    def clean(self):
        data = super().clean()
        if not (data.get("text") or "").strip() and not data.get("template"):
            raise forms.ValidationError(_("Write a text or choose a template."))
        return data


class DripQuestionForm(forms.ModelForm):
    class Meta:
        model = DripQuestion
        fields = ["text", "topic", "language", "rubric", "position"]
        widgets = {
            "text": forms.Textarea(attrs={"rows": 2}),
            "rubric": forms.Textarea(attrs={"rows": 3}),
        }


class OptInForm(forms.Form):
    """The public sign-up of a drip program. ``website`` is a honeypot: people never see it."""

    name = forms.CharField(label=_("Name"), max_length=120)
    phone = forms.CharField(
        label=_("WhatsApp number"),
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    topic = forms.ChoiceField(label=_("Topic"), required=False)
    language = forms.ChoiceField(label=_("Language"), choices=DripQuestion.Language.choices)
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        required=False,
        help_text=_("The questions arrive at the program's time in this time zone."),
    )
    consent = forms.BooleanField(
        label=_("I agree to receive these WhatsApp messages and can stop them by replying STOP.")
    )
    website = forms.CharField(
        required=False,
        label=_("Leave this empty"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def __init__(self, *args, program: DripProgram, **kwargs):
        super().__init__(*args, **kwargs)
        self.program = program
        self.region = services.default_region(program.organization)
        self.fields["language"].initial = (program.organization.language or "pt")[:2]
        self.fields["time_zone"].choices = [
            ("", _("Automatic, from my phone number's country"))
        ] + drips.zone_choices(program.organization)
        topics = program.topic_list
        if topics:
            self.fields["topic"].choices = [(t, t) for t in topics]
            self.fields["topic"].required = True
        else:
            del self.fields["topic"]
        self.fields["consent"].error_messages["required"] = _(
            "Tick the box to agree to receive the messages."
        )

    def clean_phone(self):
        e164 = services.phone_normalize(self.cleaned_data["phone"], self.region)
        if e164 is None:
            raise forms.ValidationError(
                _(
                    "That is not a valid phone number. Include the area code, e.g. +55 11 91234-5678."
                )
            )
        return e164

    def clean(self):
        """No zone chosen: the phone's country's (``drips.zone_for_phone``)."""
        data = super().clean()
        if not data.get("time_zone") and data.get("phone"):
            data["time_zone"] = drips.zone_for_phone(
                data["phone"], self.program.organization.time_zone or "UTC"
            )
        return data

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))
