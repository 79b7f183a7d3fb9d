"""Forms of the agenda settings pages: services, professionals (weekly hours, exceptions),
the organization's opening hours and holidays, and the booking rules. Every choice is limited
to the organization's own rows, and every refusal names what to fix."""

from datetime import datetime, time, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.forms import BaseModelFormSet, modelformset_factory
from django.utils.translation import gettext_lazy as _

from accounts.models import Holiday, OpeningHours, User
from appointments import availability
from appointments.models import (
    AgendaException,
    AgendaSettings,
    Professional,
    Room,
    Service,
    WorkingHours,
    _hours,
)

WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]
_TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class AgendaSettingsForm(forms.ModelForm):
    class Meta:
        model = AgendaSettings
        fields = [
            "min_notice_minutes",
            "horizon_days",
            "slot_step_minutes",
            "keywords",
            "reminder_hours",
            "reminder_template",
            "waitlist_template",
            "address",
        ]

    def clean_horizon_days(self):
        value = self.cleaned_data["horizon_days"]
        if not 1 <= value <= 730:
            raise ValidationError(_("Choose a horizon between 1 and 730 days."))
        return value

    def clean_slot_step_minutes(self):
        value = self.cleaned_data["slot_step_minutes"]
        if not 5 <= value <= 240:
            raise ValidationError(_("Choose a slot grid between 5 and 240 minutes."))
        return value

    def clean_keywords(self):
        value = self.cleaned_data["keywords"]
        if not any(k.strip() for k in value.split(",")):
            raise ValidationError(_("Enter at least one keyword that starts a booking."))
        return value

    def clean_reminder_hours(self):
        value = self.cleaned_data["reminder_hours"]
        return _clean_hours(value)


def _clean_hours(value: str) -> str:
    parts = [p.strip() for p in (value or "").split(",") if p.strip()]
    wrong = [p for p in parts if not p.isdigit() or not 0 < int(p) <= 24 * 14]
    if wrong:
        raise ValidationError(
            _("Reminders are whole hours between 1 and 336, comma separated (not “%(part)s”).")
            % {"part": wrong[0]}
        )
    return ", ".join(str(h) for h in _hours(value))


class ServiceForm(forms.ModelForm):
    class Meta:
        model = Service
        fields = [
            "name",
            "description",
            "category",
            "duration_minutes",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "price",
            "professionals",
            "bookable_online",
            "reminder_hours",
            "active",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "professionals": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["professionals"].queryset = Professional.objects.filter(
            organization=organization
        )

    def clean_duration_minutes(self):
        value = self.cleaned_data["duration_minutes"]
        if not 5 <= value <= 720:
            raise ValidationError(_("A service lasts between 5 and 720 minutes."))
        return value

    def clean_price(self):
        value = self.cleaned_data["price"]
        if value is not None and value < 0:
            raise ValidationError(_("The price cannot be negative."))
        return value

    def clean_reminder_hours(self):
        return _clean_hours(self.cleaned_data["reminder_hours"])

    def clean(self):
        cleaned = super().clean()
        for name in ("buffer_before_minutes", "buffer_after_minutes"):
            if (cleaned.get(name) or 0) > 240:
                self.add_error(name, _("A buffer is at most 240 minutes."))
        name = cleaned.get("name")
        if name:
            clash = Service.objects.filter(
                organization=self.organization, name__iexact=name.strip()
            ).exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("name", _("Another service already has this name."))
        return cleaned

    def save(self, commit=True):
        self.instance.organization = self.organization
        return super().save(commit)


class ProfessionalForm(forms.ModelForm):
    class Meta:
        model = Professional
        fields = ["name", "user", "color", "room", "active"]
        widgets = {"color": forms.TextInput(attrs={"type": "color"})}

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["user"].queryset = User.objects.filter(
            memberships__organization=organization
        ).order_by("email")
        self.fields["user"].label_from_instance = lambda user: f"{user.name} <{user.email}>"
        self.fields["user"].empty_label = _("External professional (no login)")
        self.fields["room"].queryset = Room.objects.filter(organization=organization)

    def clean_color(self):
        value = self.cleaned_data["color"]
        if len(value) != 7 or value[0] != "#":
            raise ValidationError(_("Choose a colour like #2563eb."))
        try:
            int(value[1:], 16)
        except ValueError:
            raise ValidationError(_("Choose a colour like #2563eb.")) from None
        return value.lower()

    def clean_user(self):
        user = self.cleaned_data["user"]
        if user is not None:
            taken = Professional.objects.filter(organization=self.organization, user=user).exclude(
                pk=self.instance.pk
            )
            if taken.exists():
                raise ValidationError(_("This member already has an agenda."))
        return user

    def save(self, commit=True):
        self.instance.organization = self.organization
        return super().save(commit)


class _PeriodForm(forms.ModelForm):
    weekday = forms.TypedChoiceField(label=_("Weekday"), choices=WEEKDAYS, coerce=int)

    start_field = "starts_at"
    end_field = "ends_at"

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get(self.start_field), cleaned.get(self.end_field)
        if start and end and start >= end:
            self.add_error(self.end_field, _("The end must be after the start."))
        return cleaned


class WorkingHoursForm(_PeriodForm):
    class Meta:
        model = WorkingHours
        fields = ["weekday", "starts_at", "ends_at"]
        widgets = {"starts_at": _TIME, "ends_at": _TIME}


class OpeningHoursForm(_PeriodForm):
    start_field = "opens_at"
    end_field = "closes_at"

    class Meta:
        model = OpeningHours
        fields = ["weekday", "opens_at", "closes_at"]
        widgets = {"opens_at": _TIME, "closes_at": _TIME}


class _PeriodFormSet(BaseModelFormSet):
    """Weekly periods: a day's periods may not overlap (a break is the gap between two)."""

    def __init__(self, *args, organization, **kwargs):
        self.organization = organization
        super().__init__(*args, **kwargs)

    def clean(self):
        super().clean()
        by_day: dict[int, list] = {}
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE") or form.errors:
                continue
            data = form.cleaned_data
            start = data.get(form.start_field)
            end = data.get(form.end_field)
            if start is None or end is None:
                continue
            by_day.setdefault(data["weekday"], []).append((start, end, form))
        for periods in by_day.values():
            periods.sort(key=lambda p: p[0])
            for (_s1, end1, _f1), (start2, _e2, form2) in zip(periods, periods[1:], strict=False):
                if start2 < end1:
                    form2.add_error(
                        form2.start_field,
                        _("This period overlaps another one on the same day."),
                    )

    def save_for(self, **fields):
        """Save with the organization (and ``fields``) set; deleted rows go."""
        for instance in self.save(commit=False):
            instance.organization = self.organization
            for name, value in fields.items():
                setattr(instance, name, value)
            instance.save()
        for instance in self.deleted_objects:
            instance.delete()


def working_hours_formset(professional, organization, data=None):
    FormSet = modelformset_factory(
        WorkingHours, form=WorkingHoursForm, formset=_PeriodFormSet, extra=2, can_delete=True
    )
    queryset = (
        WorkingHours.objects.filter(professional=professional)
        if professional.pk
        else WorkingHours.objects.none()
    )
    return FormSet(data, queryset=queryset, organization=organization, prefix="hours")


def opening_hours_formset(organization, data=None):
    FormSet = modelformset_factory(
        OpeningHours, form=OpeningHoursForm, formset=_PeriodFormSet, extra=2, can_delete=True
    )
    return FormSet(
        data,
        queryset=OpeningHours.objects.filter(organization=organization),
        organization=organization,
        prefix="hours",
    )


class ExceptionForm(forms.Form):
    """Time off (holiday, vacation, a blocked hour) or one-off extra hours, in the
    organization's time zone."""

    kind = forms.ChoiceField(label=_("Kind"), choices=AgendaException.Kind.choices)
    starts_on = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    starts_time = forms.TimeField(label=_("at"), required=False, widget=_TIME)
    ends_on = forms.DateField(label=_("Until"), widget=forms.DateInput(attrs={"type": "date"}))
    ends_time = forms.TimeField(label=_("at"), required=False, widget=_TIME)
    reason = forms.CharField(label=_("Reason"), max_length=120, required=False)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        tz = availability.zone(self.organization)
        start = datetime.combine(cleaned["starts_on"], cleaned.get("starts_time") or time(0), tz)
        if cleaned.get("ends_time"):
            end = datetime.combine(cleaned["ends_on"], cleaned["ends_time"], tz)
        else:  # a whole last day
            end = datetime.combine(cleaned["ends_on"] + timedelta(days=1), time(0), tz)
        if end <= start:
            self.add_error("ends_on", _("The end must be after the start."))
        elif (end - start).days > 366:
            self.add_error("ends_on", _("An exception lasts at most a year."))
        if cleaned["kind"] == AgendaException.Kind.EXTRA and not (
            cleaned.get("starts_time") and cleaned.get("ends_time")
        ):
            self.add_error("starts_time", _("Extra hours need a start and an end time."))
        cleaned["starts_at"], cleaned["ends_at"] = start, end
        return cleaned


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "name"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_date(self):
        day = self.cleaned_data["date"]
        if Holiday.objects.filter(organization=self.organization, date=day).exists():
            raise ValidationError(_("This day is already a holiday."))
        return day

    def save(self, commit=True):
        self.instance.organization = self.organization
        return super().save(commit)
