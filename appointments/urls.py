from django.urls import path

from appointments import views

urlpatterns = [
    path("", views.calendar, name="appointments_calendar"),
    path("new/", views.appointment_create, name="appointment_create"),
    path("report/", views.agenda_report, name="appointments_report"),
    path("<uuid:code>/", views.appointment_detail, name="appointment_detail"),
    path("<uuid:code>/move/", views.appointment_move, name="appointment_move"),
    path("<uuid:code>/notes/", views.visit_note_create, name="appointment_visit_note"),
    path("<uuid:code>/<slug:action>/", views.appointment_status, name="appointment_status"),
    path("feed/<str:token>.ics", views.ics_feed, name="appointments_ics_feed"),
    path(
        "professionals/<uuid:code>/feed/revoke/", views.ics_revoke, name="appointments_ics_revoke"
    ),
]
