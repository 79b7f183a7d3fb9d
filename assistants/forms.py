from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from assistants.models import AISettings, Assistant, KnowledgeSource
from integrations import egress
from integrations.ai import is_platform_server
from integrations.models import WhatsAppNumber

WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


class ListField(forms.CharField):
    """A comma-separated list of words, stored as a JSON list."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        return [item.strip() for item in (value or "").split(",") if item.strip()][:50]


class AssistantForm(forms.ModelForm):
    handoff_keywords = ListField(
        label=_("Extra handoff phrases"),
        required=False,
        help_text=_(
            "Comma-separated. Requests for a person in Portuguese, English and Spanish are "
            "recognised without them; add your own words (e.g. a manager's name)."
        ),
    )
    sensitive_topics = ListField(
        label=_("Sensitive topics"),
        required=False,
        help_text=_("Comma-separated; a customer message mentioning one goes to a person."),
    )
    business_days = forms.TypedMultipleChoiceField(
        label=_("Business days"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    contact_fields = forms.MultipleChoiceField(
        label=_("Contact fields the assistant sees"),
        choices=[
            ("name", _("Name")), ("phone", _("Phone")), ("email", _("E-mail")),
            ("tags", _("Tags")), ("attributes", _("Attributes")), ("language", _("Language")),
        ],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip
    default_for_numbers = forms.ModelMultipleChoiceField(
        label=_("Answers by default on"),
        queryset=WhatsAppNumber.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Assistant
        fields = [
            "name", "purpose", "instructions", "private_notes", "contact_fields", "tone",
            "language", "model", "temperature",
            "max_tokens", "greeting", "business_hours_enabled", "business_days", "opens_at",
            "closes_at", "outside_hours_message", "handoff_keywords", "handoff_on_low_confidence",
            "sensitive_topics", "max_turns_without_resolution", "handoff_message",
            "handoff_wait_minutes", "handoff_wait_message", "handoff_closed_message",
            "handoff_rule", "handoff_target", "pause_on_human_reply", "default_for_numbers",
            "enable_for_new_chats", "monthly_budget", "is_active",
        ]  # fmt: skip
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 6}),
            "private_notes": forms.Textarea(attrs={"rows": 3}),
            "greeting": forms.Textarea(attrs={"rows": 2}),
            "outside_hours_message": forms.Textarea(attrs={"rows": 2}),
            "handoff_message": forms.Textarea(attrs={"rows": 2}),
            "handoff_closed_message": forms.Textarea(attrs={"rows": 2}),
            "handoff_wait_message": forms.Textarea(attrs={"rows": 2}),
            "opens_at": forms.TimeInput(attrs={"type": "time"}),
            "closes_at": forms.TimeInput(attrs={"type": "time"}),
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_for_numbers"].queryset = WhatsAppNumber.objects.for_organization(
            organization
        )
        self.fields["handoff_target"].queryset = User.objects.filter(
            memberships__organization=organization
        ).order_by("email")
        self.fields["temperature"].widget.attrs.update(min=0, max=2, step="0.1")

    def clean_temperature(self):
        value = self.cleaned_data["temperature"]
        if not 0 <= value <= 2:
            raise forms.ValidationError(_("Between 0 and 2."))
        return value


class KnowledgeForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=KnowledgeSource.Kind.choices)
    title = forms.CharField(label=_("Title"), max_length=255, required=False)
    upload = forms.FileField(
        label=_("File"), required=False, help_text=_("PDF, DOCX, TXT or Markdown; up to 10 MB.")
    )
    text = forms.CharField(
        label=_("Text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_(
            "Pasted text or a web page's text. For questions and answers write "
            "“Q: …” and “A: …” lines."
        ),
    )
    url = forms.URLField(label=_("Web page address"), required=False, assume_scheme="https")

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == KnowledgeSource.Kind.FILE:
            upload = data.get("upload")
            if not upload:
                self.add_error("upload", _("Choose a file."))
            elif upload.size > 10 * 1024 * 1024:
                self.add_error("upload", _("The file is larger than 10 MB."))
        elif not (data.get("text") or "").strip():
            self.add_error("text", _("Paste the text."))
        return data


class PlaygroundForm(forms.Form):
    text = forms.CharField(label=_("Message"), max_length=2000)
    history = forms.CharField(required=False, widget=forms.HiddenInput)


class AISettingsForm(forms.ModelForm):
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to keep the current key."),
    )
    clear_api_key = forms.BooleanField(label=_("Remove the saved key"), required=False)
    base_url = forms.URLField(
        label=_("Base URL"),
        required=False,
        assume_scheme="https",
        help_text=_("Any OpenAI-compatible server, e.g. https://api.openai.com/v1"),
    )

    prices = forms.CharField(
        label=_("Model prices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "gpt-4o-mini = 0.15, 0.60"}),
        help_text=_(
            "One model a line: “model = input, output” in USD per million tokens (embeddings: "
            "input only), or “model = price” per minute for transcription. Models not listed "
            "use the built-in prices."
        ),
    )

    class Meta:
        model = AISettings
        fields = [
            "api_key",
            "base_url",
            "embedding_model",
            "transcription_model",
            "timeout_seconds",
            "embedding_query_prefix",
            "embedding_passage_prefix",
            "synonyms",
            "min_relevance",
            "min_similarity",
            "handoff_phrases",
            "prices",
        ]
        widgets = {"synonyms": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("min_relevance", "min_similarity"):  # empty: keep the default
            self.fields[name].required = False
        self.initial["prices"] = "\n".join(
            f"{model} = {', '.join(str(v) for v in (values if isinstance(values, list) else [values]))}"
            for model, values in (self.instance.prices or {}).items()
        )

    def clean_prices(self) -> dict:
        """``model = 0.15, 0.60`` lines into ``{"model": [0.15, 0.6]}``; a bad line is named."""
        prices: dict = {}
        for number, line in enumerate((self.cleaned_data.get("prices") or "").splitlines(), 1):
            if not line.strip():
                continue
            model, equals, values = line.partition("=")
            try:
                amounts = [float(v) for v in values.replace(";", ",").split(",") if v.strip()]
            except ValueError:
                amounts = []
            if not equals or not model.strip() or not 1 <= len(amounts) <= 2 or min(amounts) < 0:
                raise forms.ValidationError(
                    _("Line %(n)s: write “model = input, output” with prices of 0 or more.")
                    % {"n": number}
                )
            prices[model.strip()[:100]] = amounts
        return prices

    def clean_min_relevance(self):
        value = self.cleaned_data["min_relevance"]
        if value is None:
            return AISettings._meta.get_field("min_relevance").default
        if not 0 <= value <= 1:
            raise forms.ValidationError(_("Between 0 and 1."))
        return value

    def clean_min_similarity(self):
        value = self.cleaned_data["min_similarity"]
        if value is None:
            return AISettings._meta.get_field("min_similarity").default
        if not 0 <= value <= 1:
            raise forms.ValidationError(_("Between 0 and 1."))
        return value

    def clean_timeout_seconds(self):
        value = self.cleaned_data["timeout_seconds"]
        if not 1 <= value <= 120:
            raise forms.ValidationError(_("Between 1 and 120 seconds."))
        return value

    def clean_base_url(self):
        """An organization's own server must be reachable only at a public address (or be one
        the operator listed); each request checks again, as DNS answers change."""
        url = self.cleaned_data["base_url"]
        if url and not is_platform_server(url):
            try:
                egress.url_check(url, allow=settings.AI_PRIVATE_BASE_URLS)
            except egress.UnsafeURL as error:
                raise forms.ValidationError(str(error)) from error
        return url

    def clean(self):
        data = super().clean()
        url = data.get("base_url")
        keeps_key = bool(self.instance.api_key) and not data.get("clear_api_key")
        if url and not is_platform_server(url) and not (data.get("api_key") or keeps_key):
            self.add_error(
                "api_key",
                _(
                    "Enter this server's API key: the platform's key is only sent to the "
                    "platform's own server."
                ),
            )
        return data


class FollowUpSettingsForm(forms.ModelForm):
    """What the analysis' follow-up date does: remind the assignee (default), send a template
    to the customer, or nothing. A template must fit (``followups.template_problem``)."""

    class Meta:
        model = AISettings
        fields = ["follow_up_action", "follow_up_template"]
        widgets = {"follow_up_action": forms.RadioSelect}

    def __init__(self, *args, organization, **kwargs):
        from integrations.models import MessageTemplate

        super().__init__(*args, **kwargs)
        field = self.fields["follow_up_template"]
        field.queryset = (
            MessageTemplate.objects.filter(organization=organization, status="APPROVED")
            .exclude(category="TEXT")  # WhatsApp Web numbers' saved texts are not templates
            .select_related("number")
            .order_by("name", "language", "number__name")
        )
        field.label_from_instance = lambda t: f"{t.name} ({t.language}) · {t.number.name}"

    def clean(self):
        from assistants.followups import template_problem

        data = super().clean()
        if data.get("follow_up_action") == AISettings.FollowUpAction.TEMPLATE:
            problem = template_problem(data.get("follow_up_template"))
            if problem:
                self.add_error("follow_up_template", problem)
        return data
