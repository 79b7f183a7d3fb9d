from django.urls import path

from appointments import settings_views, views

urlpatterns = [
    path("", views.calendar, name="appointments_calendar"),
    path("new/", views.appointment_create, name="appointment_create"),
    path("report/", views.agenda_report, name="appointments_report"),
    path("settings/", settings_views.rules, name="agenda_settings"),
    path("settings/services/", settings_views.service_list, name="agenda_settings_services"),
    path("settings/services/new/", settings_views.service_edit, name="agenda_settings_service_new"),
    path(
        "settings/services/<uuid:code>/",
        settings_views.service_edit,
        name="agenda_settings_service",
    ),
    path(
        "settings/professionals/",
        settings_views.professional_list,
        name="agenda_settings_professionals",
    ),
    path(
        "settings/professionals/new/",
        settings_views.professional_edit,
        name="agenda_settings_professional_new",
    ),
    path(
        "settings/professionals/<uuid:code>/",
        settings_views.professional_edit,
        name="agenda_settings_professional",
    ),
    path(
        "settings/professionals/<uuid:code>/exceptions/",
        settings_views.exception_add,
        name="agenda_settings_exception_add",
    ),
    path(
        "settings/professionals/<uuid:code>/exceptions/<int:pk>/delete/",
        settings_views.exception_delete,
        name="agenda_settings_exception_delete",
    ),
    path("settings/hours/", settings_views.opening_hours, name="agenda_settings_hours"),
    path("settings/holidays/", settings_views.holiday_add, name="agenda_settings_holiday_add"),
    path(
        "settings/holidays/<int:pk>/delete/",
        settings_views.holiday_delete,
        name="agenda_settings_holiday_delete",
    ),
    path("<uuid:code>/", views.appointment_detail, name="appointment_detail"),
    path("<uuid:code>/move/", views.appointment_move, name="appointment_move"),
    path("<uuid:code>/notes/", views.visit_note_create, name="appointment_visit_note"),
    path("<uuid:code>/<slug:action>/", views.appointment_status, name="appointment_status"),
    path("feed/<str:token>.ics", views.ics_feed, name="appointments_ics_feed"),
    path(
        "professionals/<uuid:code>/feed/revoke/", views.ics_revoke, name="appointments_ics_revoke"
    ),
]
