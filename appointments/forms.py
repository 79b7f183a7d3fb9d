"""Staff forms: book, move. Times are entered in the organization's time zone."""

from datetime import datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from appointments import availability
from appointments.models import Professional, Service
from inbox.models import Contact


class _WhenForm(forms.Form):
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label=_("Time"), widget=forms.TimeInput(attrs={"type": "time"}))
    professional = forms.ModelChoiceField(
        label=_("Professional"), queryset=Professional.objects.none(), to_field_name="code"
    )

    def __init__(self, *args, organization, professionals, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["professional"].queryset = professionals.filter(active=True)

    def starts_at(self) -> datetime:
        tz = availability.zone(self.organization)
        return datetime.combine(self.cleaned_data["date"], self.cleaned_data["time"], tzinfo=tz)


class AppointmentForm(_WhenForm):
    service = forms.ModelChoiceField(
        label=_("Service"), queryset=Service.objects.none(), to_field_name="code"
    )
    customer_name = forms.CharField(label=_("Customer"), max_length=255, required=False)
    phone = forms.CharField(
        label=_("WhatsApp number"),
        max_length=20,
        required=False,
        help_text=_("Links the appointment to the contact (reminders go to them)."),
    )
    notes = forms.CharField(
        label=_("Notes"), widget=forms.Textarea(attrs={"rows": 2}), required=False
    )

    notify = forms.BooleanField(
        label=_("Send the confirmation on WhatsApp"),
        required=False,
        initial=True,
        help_text=_("With the date, time, address and a calendar file (open conversations only)."),
    )

    field_order = [
        "service", "professional", "date", "time", "customer_name", "phone", "notes", "notify",
    ]  # fmt: skip

    def __init__(self, *args, organization, professionals, **kwargs):
        super().__init__(*args, organization=organization, professionals=professionals, **kwargs)
        self.fields["service"].queryset = Service.objects.filter(
            organization=organization, active=True
        )

    def clean(self):
        cleaned = super().clean()
        phone = "".join(c for c in cleaned.get("phone", "") if c.isdigit())
        cleaned["contact"] = None
        if phone:
            contact = Contact.objects.filter(organization=self.organization, wa_id=phone).first()
            if contact is None:
                self.add_error("phone", _("No contact has this WhatsApp number."))
            cleaned["contact"] = contact
        if not cleaned.get("customer_name") and not phone:
            self.add_error("customer_name", _("Enter the customer's name or WhatsApp number."))
        return cleaned


class MoveForm(_WhenForm):
    pass
