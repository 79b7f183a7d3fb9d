from django.contrib import admin

from accounts.admin import ReadOnlyTenantAdmin, TenantAdmin
from appointments.models import (
    AgendaException,
    AgendaSettings,
    Appointment,
    BookingSession,
    Professional,
    Reminder,
    Room,
    Service,
    VisitNote,
    WaitlistEntry,
    WorkingHours,
)


@admin.register(AgendaSettings)
class AgendaSettingsAdmin(TenantAdmin):
    list_display = ("organization", "min_notice_minutes", "horizon_days", "reminder_hours")


@admin.register(Service)
class ServiceAdmin(TenantAdmin):
    list_display = ("name", "organization", "category", "duration_minutes", "price", "active")
    list_filter = ("active", "bookable_online")
    search_fields = ("name", "category")
    filter_horizontal = ("professionals",)


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    extra = 0
    exclude = ("organization",)


@admin.register(Professional)
class ProfessionalAdmin(TenantAdmin):
    list_display = ("name", "organization", "user", "active")
    search_fields = ("name",)
    inlines = [WorkingHoursInline]

    def save_formset(self, request, form, formset, change):
        for inline in formset.save(commit=False):
            inline.organization_id = form.instance.organization_id
            inline.save()
        for deleted in formset.deleted_objects:
            deleted.delete()


@admin.register(AgendaException)
class AgendaExceptionAdmin(TenantAdmin):
    list_display = ("professional", "organization", "kind", "starts_at", "ends_at", "reason")
    list_filter = ("kind",)


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyTenantAdmin):
    list_display = ("starts_at", "service", "professional", "customer_name", "status", "channel")
    list_filter = ("status", "channel")
    search_fields = ("customer_name",)


@admin.register(BookingSession)
class BookingSessionAdmin(ReadOnlyTenantAdmin):
    list_display = ("chat", "step", "service", "starts_at", "expires_at")


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyTenantAdmin):
    list_display = ("appointment", "hours", "due_at", "status", "sent_at")
    list_filter = ("status",)


@admin.register(VisitNote)
class VisitNoteAdmin(ReadOnlyTenantAdmin):
    list_display = ("appointment", "author", "status", "created_at")
    list_filter = ("status",)


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyTenantAdmin):
    list_display = ("contact", "service", "wanted_from", "wanted_until", "status", "offers")
    list_filter = ("status",)


@admin.register(Room)
class RoomAdmin(TenantAdmin):
    list_display = ("name", "organization")
    search_fields = ("name",)
