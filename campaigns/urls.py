from django.urls import path

from campaigns import views

urlpatterns = [
    path("", views.index, name="campaigns_index"),
    path("new/", views.campaign_create, name="campaign_create"),
    path("<uuid:code>/", views.campaign_detail, name="campaign_detail"),
    path("<uuid:code>/launch/", views.campaign_launch, name="campaign_launch"),
    path("<uuid:code>/pause/", views.campaign_pause, name="campaign_pause"),
    path("<uuid:code>/resume/", views.campaign_resume, name="campaign_resume"),
    path("<uuid:code>/cancel/", views.campaign_cancel, name="campaign_cancel"),
    path("<uuid:code>/test/", views.campaign_test_send, name="campaign_test_send"),
    path("contacts/", views.contact_list, name="campaign_contact_list"),
    path("contacts/bulk/", views.contact_bulk, name="campaign_contact_bulk"),
    path("contacts/import/", views.contact_import, name="campaign_contact_import"),
    path("contacts/export/", views.contact_export, name="campaign_contact_export"),
    path("contacts/opt-out/", views.audience_settings, name="audience_settings"),
    path("contacts/<uuid:code>/", views.contact_edit, name="campaign_contact_edit"),
    path("segments/", views.segment_list, name="segment_list"),
    path("segments/new/", views.segment_create, name="segment_create"),
    path("segments/<uuid:code>/", views.segment_detail, name="segment_detail"),
    path("segments/<uuid:code>/delete/", views.segment_delete, name="segment_delete"),
]
