from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from reports.models import (
    AlertSettings,
    AuditEvent,
    OpsSettings,
    ReportSettings,
    RetentionPolicy,
)
from reports.selectors import Period

MAX_DAYS = 366


class PeriodForm(forms.Form):
    """today, the last 7/30/90 days, or custom dates (in the organization's time zone)."""

    PRESETS = {"today": 1, "7": 7, "30": 30, "90": 90}
    period = forms.ChoiceField(
        label=_("Period"),
        required=False,
        initial="30",
        choices=[
            ("today", _("Today")),
            ("7", _("Last 7 days")),
            ("30", _("Last 30 days")),
            ("90", _("Last 90 days")),
            ("custom", _("Custom")),
        ],
    )
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput({"type": "date"})
    )
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput({"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("period") == "custom":
            start, end = cleaned.get("start"), cleaned.get("end")
            if not start or not end:
                raise forms.ValidationError(_("Choose both dates of a custom period."))
            if end < start:
                raise forms.ValidationError(_("The end date is before the start date."))
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(_("Choose at most one year."))
        return cleaned

    def get_period(self, today) -> Period:
        choice = (self.cleaned_data.get("period") if self.is_valid() else "") or "30"
        if choice == "custom":
            return Period(self.cleaned_data["start"], self.cleaned_data["end"])
        return Period(today - timedelta(days=self.PRESETS[choice] - 1), today)


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", _("All actions")), *AuditEvent.Action.choices],
    )
    actor = forms.ModelChoiceField(
        label=_("Who"), required=False, queryset=None, empty_label=_("Anyone")
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput({"type": "date"})
    )
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput({"type": "date"}))
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actor"].queryset = members


class RetentionForm(forms.ModelForm):
    class Meta:
        model = RetentionPolicy
        fields = ["message_days"]


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField(label=_("I understand this cannot be undone."), required=True)


class ReportSettingsForm(forms.ModelForm):
    """The CSAT survey and the weekly email; recipients can only be the organization's members."""

    class Meta:
        model = ReportSettings
        fields = [
            "csat_enabled",
            "csat_question",
            "weekly_enabled",
            "weekly_weekday",
            "weekly_hour",
            "weekly_recipients",
        ]
        widgets = {
            "csat_question": forms.TextInput(),
            "weekly_recipients": forms.CheckboxSelectMultiple,
        }

    CSAT_FIELDS = ("csat_enabled", "csat_question")
    WEEKLY_FIELDS = ("weekly_enabled", "weekly_weekday", "weekly_hour", "weekly_recipients")

    def __init__(self, *args, members, question_placeholder: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        recipients = self.fields["weekly_recipients"]
        recipients.queryset = members
        recipients.label_from_instance = lambda user: f"{user.display_name} <{user.email}>"
        self.fields["csat_question"].widget.attrs["placeholder"] = question_placeholder

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("weekly_enabled") and not cleaned.get("weekly_recipients"):
            self.add_error("weekly_recipients", _("Choose at least one teammate."))
        return cleaned

    def csat_fields(self):
        return [self[name] for name in self.CSAT_FIELDS]

    def weekly_fields(self):
        return [self[name] for name in self.WEEKLY_FIELDS]


class AlertSettingsForm(forms.ModelForm):
    class Meta:
        model = AlertSettings
        fields = [
            "send_error_percent",
            "send_error_min_sends",
            "ai_budget_percent",
            "quality_alerts",
            "email",
        ]


class OpsSettingsForm(forms.ModelForm):
    class Meta:
        model = OpsSettings
        fields = ["queue_backlog"]
