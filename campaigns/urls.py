from django.urls import path

from campaigns import automation_views, views

urlpatterns = [
    path("", views.index, name="campaigns_index"),
    path("new/", views.campaign_create, name="campaign_create"),
    path("<uuid:code>/", views.campaign_detail, name="campaign_detail"),
    path("<uuid:code>/launch/", views.campaign_launch, name="campaign_launch"),
    path("<uuid:code>/pause/", views.campaign_pause, name="campaign_pause"),
    path("<uuid:code>/resume/", views.campaign_resume, name="campaign_resume"),
    path("<uuid:code>/cancel/", views.campaign_cancel, name="campaign_cancel"),
    path("<uuid:code>/test/", views.campaign_test_send, name="campaign_test_send"),
    path("<uuid:code>/ai/", views.campaign_ai_regenerate, name="campaign_ai_regenerate"),
    path("<uuid:code>/ai/<uuid:contact>/", views.campaign_ai_edit, name="campaign_ai_edit"),
    path("contacts/", views.contact_list, name="campaign_contact_list"),
    path("contacts/bulk/", views.contact_bulk, name="campaign_contact_bulk"),
    path("contacts/import/", views.contact_import, name="campaign_contact_import"),
    path(
        "contacts/import/<uuid:code>/",
        views.contact_import_detail,
        name="campaign_contact_import_detail",
    ),
    path(
        "contacts/import/<uuid:code>/errors.csv",
        views.contact_import_errors,
        name="campaign_contact_import_errors",
    ),
    path("contacts/export/", views.contact_export, name="campaign_contact_export"),
    path("contacts/opt-out/", views.audience_settings, name="audience_settings"),
    path("contacts/<uuid:code>/", views.contact_edit, name="campaign_contact_edit"),
    path("segments/", views.segment_list, name="segment_list"),
    path("segments/new/", views.segment_create, name="segment_create"),
    path("segments/<uuid:code>/", views.segment_detail, name="segment_detail"),
    path("segments/<uuid:code>/delete/", views.segment_delete, name="segment_delete"),
    # Automations and drips
    path("automations/", automation_views.automation_list, name="automation_list"),
    path("automations/new/", automation_views.automation_create, name="automation_create"),
    path("automations/<uuid:code>/", automation_views.automation_runs, name="automation_runs"),
    path("automations/<uuid:code>/edit/", automation_views.automation_edit, name="automation_edit"),
    path(
        "automations/<uuid:code>/delete/",
        automation_views.automation_delete,
        name="automation_delete",
    ),
    path("drips/", automation_views.drip_list, name="drip_list"),
    path("drips/new/", automation_views.drip_create, name="drip_create"),
    path("drips/<uuid:code>/", automation_views.drip_detail, name="drip_detail"),
    path("drips/<uuid:code>/steps/", automation_views.drip_step_add, name="drip_step_add"),
    path(
        "drips/<uuid:code>/steps/<uuid:step_code>/delete/",
        automation_views.drip_step_delete,
        name="drip_step_delete",
    ),
    path("drips/<uuid:code>/questions/", automation_views.drip_questions, name="drip_questions"),
    path(
        "drips/<uuid:code>/questions/<uuid:question_code>/delete/",
        automation_views.drip_question_delete,
        name="drip_question_delete",
    ),
    path("drips/<uuid:code>/enrolments/", automation_views.drip_enrolments, name="drip_enrolments"),
    path(
        "drips/<uuid:code>/enrolments/<uuid:enrolment_code>/stop/",
        automation_views.drip_enrolment_stop,
        name="drip_enrolment_stop",
    ),
    # Public, no sign-in: the unguessable slug is the address of a program's opt-in form.
    path("join/<str:slug>/", automation_views.optin_form, name="drip_optin"),
]
