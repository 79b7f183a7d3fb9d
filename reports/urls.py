from django.urls import path

from reports import ops, views

urlpatterns = [
    path("", views.dashboard, name="reports_dashboard"),
    path("export/", views.report_export, name="report_export"),
    path("settings/", views.report_settings, name="report_settings"),
    path("settings/send-now/", views.report_send_now, name="report_send_now"),
    path("audit/", views.audit_log, name="audit_log"),
    path("alerts/", ops.alert_list, name="alert_list"),
    path("ops/", ops.ops_page, name="ops_page"),
    path("ops/outbox/", ops.ops_outbox, name="ops_outbox"),
    path("privacy/", views.privacy_settings, name="privacy_settings"),
    path("privacy/contacts/<uuid:code>/", views.contact_privacy, name="contact_privacy"),
    path("privacy/contacts/<uuid:code>/export/", views.contact_export, name="contact_export"),
    path("privacy/contacts/<uuid:code>/erase/", views.contact_erase, name="contact_erase"),
]
