from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from assistants.models import Assistant
from campaigns import services
from campaigns.models import AudienceSettings, Campaign, Segment
from inbox.models import Contact
from integrations.models import MessageTemplate, WhatsAppNumber

WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]
SOURCES = [
    ("name", _("Contact name")),
    ("first_name", _("First name")),
    ("phone", _("Phone")),
    ("email", _("Email")),
    ("attribute", _("Custom attribute")),
    ("fixed", _("Fixed text")),
    ("assistant", _("Written by an assistant")),
]
CONVERSIONS = [
    ("none", _("Nothing (not counted)")),
    ("reply", _("The contact replies")),
    ("tag", _("A tag is added to the contact")),
    ("intent", _("A conversation analysis finds an intent")),
]


class CampaignForm(forms.ModelForm):
    """A campaign; the variable fields follow the chosen template's placeholders."""

    scheduled_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("In the organization's time zone."),
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Weekdays"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    conversion = forms.ChoiceField(
        label=_("Counts as a conversion"),
        choices=CONVERSIONS,
        initial="reply",
        required=False,
        help_text=_("Within 7 days of the send; the contact becomes a customer."),
    )
    conversion_value = forms.CharField(
        label=_("Tag or intent"),
        required=False,
        max_length=60,
        help_text=_("The tag, or a word of the intent (e.g. “agendar”)."),
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "number",
            "template",
            "header_media_link",
            "segment",
            "require_opt_in",
            "schedule",
            "scheduled_at",
            "send_time",
            "weekdays",
            "time_zone_mode",
            "pace",
            "rate_per_second",
            "stagger_min_seconds",
            "stagger_max_seconds",
            "quiet_start",
            "quiet_end",
            "quiet_action",
        ]
        widgets = {
            "send_time": forms.TimeInput(attrs={"type": "time"}),
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
            "template": forms.Select(attrs={"hx-trigger": "change"}),
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.tz = ZoneInfo(organization.time_zone)
        self.fields["number"].queryset = WhatsAppNumber.objects.filter(
            organization=organization, is_active=True
        )
        self.fields["template"].queryset = MessageTemplate.objects.filter(
            organization=organization, status="APPROVED"
        ).select_related("number")
        self.fields["segment"].queryset = Segment.objects.filter(organization=organization)
        self.fields["segment"].empty_label = _("All opted-in contacts")
        self.template = self._chosen_template()
        self.slots = services.template_slots(self.template) if self.template else None
        self.variable_rows = []
        assistants = [("", "---------")] + [
            (str(a.code), a.name)
            for a in Assistant.objects.filter(organization=organization, is_active=True)
        ]
        if self.slots:
            saved = self.instance.variables if self.instance.pk else {}
            if not (saved.get("header") or saved.get("body")):
                saved = services.default_variables(self.template)
            for part in ("header", "body"):
                for position, slot in enumerate(self.slots[part]):
                    prefix = f"var_{part}_{position}"
                    mappings = saved.get(part) or []
                    self._initial_mapping(
                        prefix, mappings[position] if position < len(mappings) else {}
                    )
                    self.fields[f"{prefix}_source"] = forms.ChoiceField(
                        label=_("{{%(slot)s}} in %(part)s") % {"slot": slot, "part": part},
                        choices=SOURCES,
                        widget=forms.Select(attrs={"data-variable-source": ""}),
                    )
                    self.fields[f"{prefix}_value"] = forms.CharField(
                        label=_("Attribute, text or instruction"),
                        required=False,
                        max_length=500,
                        help_text=_(
                            "For an assistant: what to write, e.g. “one friendly sentence for "
                            "this contact from their facts”."
                        ),
                    )
                    self.fields[f"{prefix}_assistant"] = forms.ChoiceField(
                        label=_("Assistant"), choices=assistants, required=False
                    )
                    self.fields[f"{prefix}_fallback"] = forms.CharField(
                        label=_("When empty"), required=False, max_length=200
                    )
                    self.variable_rows.append(
                        [
                            self[f"{prefix}_source"],
                            self[f"{prefix}_value"],
                            self[f"{prefix}_assistant"],
                            self[f"{prefix}_fallback"],
                        ]
                    )

    def _initial_mapping(self, prefix: str, mapping: dict) -> None:
        """Show a saved or default mapping in the variable's fields."""
        source, value = mapping.get("source", "fixed"), mapping.get("value", "")
        if source == "field" and value.startswith("attribute:"):
            source, value = "attribute", value.split(":", 1)[1]
        elif source == "field":
            source, value = value or "first_name", ""
        self.initial.setdefault(f"{prefix}_source", source)
        self.initial.setdefault(f"{prefix}_value", value)
        self.initial.setdefault(f"{prefix}_assistant", mapping.get("assistant", ""))
        self.initial.setdefault(f"{prefix}_fallback", mapping.get("fallback", ""))

    def _chosen_template(self):
        raw = self.data.get("template") if self.is_bound else self.initial.get("template")
        if not raw and self.instance.pk:
            return self.instance.template
        try:
            return self.fields["template"].queryset.filter(pk=int(raw)).first() if raw else None
        except (TypeError, ValueError):
            return None

    def clean_scheduled_at(self):
        value = self.cleaned_data.get("scheduled_at")
        if value is not None:
            value = value.replace(tzinfo=self.tz) if timezone.is_naive(value) else value
        return value

    def clean(self):
        data = super().clean()
        schedule = data.get("schedule")
        number, template = data.get("number"), data.get("template")
        if number and template and template.number_id != number.pk:
            self.add_error("template", _("Choose a template of the selected number."))
        if schedule == Campaign.Schedule.AT:
            if not data.get("scheduled_at"):
                self.add_error("scheduled_at", _("Choose when to send."))
            elif data["scheduled_at"] <= timezone.now():
                self.add_error("scheduled_at", _("Choose a moment in the future."))
        if schedule in (Campaign.Schedule.DAILY, Campaign.Schedule.WEEKLY) and not data.get(
            "send_time"
        ):
            self.add_error("send_time", _("Choose the time of day."))
        if schedule == Campaign.Schedule.WEEKLY and not data.get("weekdays"):
            self.add_error("weekdays", _("Choose at least one weekday."))
        if (
            number
            and data.get("rate_per_second")
            and data["rate_per_second"] > number.throughput_per_second
        ):
            self.add_error(
                "rate_per_second",
                _("This number allows at most %(cap)s messages per second.")
                % {"cap": number.throughput_per_second},
            )
        if data.get("pace") == Campaign.Pace.STAGGER and (
            (data.get("stagger_min_seconds") or 0) > (data.get("stagger_max_seconds") or 0)
        ):
            self.add_error("stagger_max_seconds", _("The maximum must not be below the minimum."))
        if bool(data.get("quiet_start")) != bool(data.get("quiet_end")):
            self.add_error("quiet_end", _("Give both the start and the end of quiet hours."))
        if (
            self.slots
            and self.slots["header_format"] in ("IMAGE", "VIDEO", "DOCUMENT")
            and not data.get("header_media_link")
        ):
            self.add_error(
                "header_media_link", _("This template needs a media link for its header.")
            )
        data["variables"] = self._variables(data)
        conversion = data.get("conversion") or "none"
        value = (data.get("conversion_value") or "").strip()
        if conversion in ("tag", "intent") and not value:
            self.add_error("conversion_value", _("Name the tag or the intent."))
        data["variables"]["conversion"] = {
            "kind": conversion,
            "value": value if conversion in ("tag", "intent") else "",
        }
        return data

    def _variables(self, data) -> dict:
        variables: dict = {}
        if not self.slots:
            return variables
        for part in ("header", "body"):
            mappings = []
            for position, _slot in enumerate(self.slots[part]):
                prefix = f"var_{part}_{position}"
                source = data.get(f"{prefix}_source") or "name"
                value = (data.get(f"{prefix}_value") or "").strip()
                if source == "fixed":
                    mapping = {"source": "fixed", "value": value}
                    if not value:
                        self.add_error(f"{prefix}_value", _("Write the text to use."))
                elif source == "attribute":
                    mapping = {"source": "field", "value": f"attribute:{value}"}
                    if not value:
                        self.add_error(f"{prefix}_value", _("Name the attribute."))
                elif source == "assistant":
                    assistant = data.get(f"{prefix}_assistant") or ""
                    mapping = {"source": "assistant", "assistant": assistant, "value": value}
                    if not value:
                        self.add_error(f"{prefix}_value", _("Tell the assistant what to write."))
                    if not assistant:
                        self.add_error(f"{prefix}_assistant", _("Choose the assistant."))
                else:
                    mapping = {"source": "field", "value": source}
                mapping["fallback"] = (data.get(f"{prefix}_fallback") or "").strip()
                mappings.append(mapping)
            if mappings:
                variables[part] = mappings
        return variables

    def save(self, commit=True):
        self.instance.variables = self.cleaned_data["variables"]
        self.instance.organization = self.organization
        return super().save(commit)


class TestSendForm(forms.Form):
    phone = forms.CharField(label=_("Teammate's WhatsApp number"), max_length=32)


class ContactFilterForm(forms.Form):
    """The contacts page's filters; saved as a segment's ``filters``."""

    q = forms.CharField(label=_("Search"), required=False)
    tag = forms.CharField(label=_("Tag"), required=False)
    opt_in = forms.ChoiceField(
        label=_("Opt-in"), required=False, choices=[("", _("Any"))] + list(Contact.OptIn.choices)
    )
    stage = forms.ChoiceField(
        label=_("Stage"), required=False, choices=[("", _("Any"))] + list(Contact.Stage.choices)
    )
    inbound_after = forms.DateField(
        label=_("Wrote after"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    inbound_before = forms.DateField(
        label=_("Silent since"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    attribute = forms.CharField(label=_("Attribute (key=value)"), required=False)
    engagement = forms.ChoiceField(
        label=_("Campaign engagement"),
        required=False,
        choices=[
            ("", _("Any")),
            ("read_not_replied", _("Read but did not reply")),
            ("delivered_not_read", _("Delivered but not read")),
            ("replied", _("Replied")),
            ("not_delivered", _("Not delivered")),
            ("failed", _("Could not be reached")),
        ],
    )
    engagement_campaign = forms.ChoiceField(
        label=_("In campaign"), required=False, choices=[("", _("Any campaign"))]
    )
    lead_score_min = forms.IntegerField(
        label=_("Lead score from"), required=False, min_value=1, max_value=10
    )
    lead_score_max = forms.IntegerField(
        label=_("Lead score up to"), required=False, min_value=1, max_value=10
    )

    def __init__(self, *args, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organization is not None:
            self.fields["engagement_campaign"].choices = [("", _("Any campaign"))] + [
                (str(code), name)
                for code, name in Campaign.objects.filter(organization=organization)
                .exclude(status=Campaign.Status.DRAFT)
                .values_list("code", "name")[:200]
            ]

    def clean(self):
        data = super().clean()
        low, high = data.get("lead_score_min"), data.get("lead_score_max")
        if low is not None and high is not None and low > high:
            self.add_error("lead_score_max", _("The maximum must not be below the minimum."))
        return data

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        filters: dict = {}
        if data["tag"]:
            filters["tags"] = [data["tag"]]
        if data["opt_in"]:
            filters["opt_in"] = data["opt_in"]
        if data["stage"]:
            filters["stages"] = [data["stage"]]
        if data["inbound_after"]:
            filters["inbound_after"] = data["inbound_after"].isoformat()
        if data["inbound_before"]:
            filters["inbound_before"] = data["inbound_before"].isoformat()
        if data["engagement"]:
            filters["engagement"] = {"state": data["engagement"]}
            if data["engagement_campaign"]:
                filters["engagement"]["campaign"] = data["engagement_campaign"]
        for bound in ("lead_score_min", "lead_score_max"):
            if data[bound] is not None:
                filters[bound] = data[bound]
        if "=" in data["attribute"]:
            key, value = data["attribute"].split("=", 1)
            if key.strip().isidentifier():
                filters["attributes"] = {key.strip(): value.strip()}
        return filters


class ContactForm(forms.ModelForm):
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma separated."))

    class Meta:
        model = Contact
        fields = ["name", "email", "tags", "stage", "opt_in", "language", "time_zone", "notes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["tags"] = ", ".join(self.instance.tags or [])

    def clean_tags(self):
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]

    def clean_time_zone(self):
        value = self.cleaned_data["time_zone"]
        if value:
            try:
                ZoneInfo(value)
            except (KeyError, ValueError) as error:
                raise forms.ValidationError(_("Unknown time zone.")) from error
        return value


class BulkTagForm(forms.Form):
    contacts = forms.CharField(widget=forms.HiddenInput, required=False)
    add = forms.CharField(label=_("Add tags"), required=False)
    remove = forms.CharField(label=_("Remove tags"), required=False)


class ImportUploadForm(forms.Form):
    """A CSV or XLSX file, read into ``header`` and ``rows`` here so a bad file is a form
    error."""

    file = forms.FileField(
        label=_("CSV or Excel (.xlsx) file"),
        help_text=_("First line: column names. Excel: the first sheet is read."),
        widget=forms.ClearableFileInput(
            attrs={
                "accept": ".csv,.txt,.xlsx,text/csv,"
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 10 * 1024 * 1024:
            raise forms.ValidationError(_("The file is larger than 10 MB."))
        self.data_bytes = upload.read()
        try:
            self.header, self.rows = services.import_file_read(self.data_bytes)
        except services.ImportFileError as error:
            raise forms.ValidationError(str(error)) from error
        if not self.header:
            raise forms.ValidationError(_("The file is empty."))
        return upload


def import_targets():
    return [
        ("", _("Ignore")),
        ("phone", _("Phone")),
        ("name", _("Name")),
        ("email", _("Email")),
        ("tags", _("Tags")),
        ("language", _("Language")),
        ("time_zone", _("Time zone")),
        ("opt_in", _("Opt-in (yes/no)")),
        ("stage", _("Stage")),
        ("attribute", _("Custom attribute")),
    ]


GUESSES = {
    "phone": "phone",
    "telefone": "phone",
    "celular": "phone",
    "whatsapp": "phone",
    "name": "name",
    "nome": "name",
    "email": "email",
    "e-mail": "email",
    "tags": "tags",
    "language": "language",
    "idioma": "language",
    "opt_in": "opt_in",
    "optin": "opt_in",
    "stage": "stage",
    "time_zone": "time_zone",
}


class ImportMappingForm(forms.Form):
    """One select per CSV column: where its values go."""

    def __init__(self, *args, header: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        for index, name in enumerate(header):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=name or _("Column %(n)s") % {"n": index + 1},
                choices=import_targets(),
                required=False,
                initial=GUESSES.get(name.strip().lower(), "attribute"),
            )

    def clean(self):
        cleaned = super().clean()
        if "phone" not in cleaned.values():
            raise forms.ValidationError(_("Map one column to the phone number."))
        return cleaned

    def mapping(self) -> dict[str, str]:
        mapping = {}
        for index, name in enumerate(self.header):
            target = self.cleaned_data.get(f"col_{index}") or ""
            if target == "attribute":
                key = (
                    "".join(c if c.isalnum() else "_" for c in name.strip().lower())
                    or f"col{index}"
                )
                target = f"attribute:{key}"
            mapping[name] = target
        return mapping


class AISampleForm(forms.Form):
    """Staff's wording of the assistant-written variables for one previewed contact."""

    def __init__(self, *args, campaign, texts: dict, **kwargs):
        super().__init__(*args, **kwargs)
        slots = services.template_slots(campaign.template)
        self.keys = []
        for part, position, _mapping in services.ai_slots(campaign.variables):
            key = services.slot_key(part, position)
            slot = slots[part][position] if position < len(slots[part]) else str(position + 1)
            self.keys.append(key)
            self.fields[f"text_{part}_{position}"] = forms.CharField(
                label=_("{{%(slot)s}} in %(part)s") % {"slot": slot, "part": part},
                max_length=services.AI_TEXT_LIMITS[part],
                initial=texts.get(key, ""),
                widget=forms.Textarea(attrs={"rows": 2}),
            )

    def texts(self) -> dict[str, str]:
        return {
            key: " ".join(self.cleaned_data[f"text_{key.replace(':', '_')}"].split())
            for key in self.keys
        }


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "kind"]


class AudienceSettingsForm(forms.ModelForm):
    class Meta:
        model = AudienceSettings
        fields = ["opt_out_keywords", "opt_in_keywords", "opt_out_reply", "opt_in_reply"]
