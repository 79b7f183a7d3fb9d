from django.urls import path

from accounts import teams, views

urlpatterns = [
    path("organizations/new/", views.organization_create, name="organization_create"),
    path(
        "organizations/<uuid:code>/switch/", views.organization_switch, name="organization_switch"
    ),
    path("language/", views.language_set, name="language_set"),
    path("settings/", views.settings_organization, name="settings_organization"),
    path("settings/members/", views.member_list, name="member_list"),
    path("settings/members/invite/", views.member_invite, name="member_invite"),
    path("settings/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("settings/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "settings/invitations/<uuid:code>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("settings/billing/", views.billing, name="billing"),
    path("settings/teams/", teams.team_list, name="team_list"),
    path("settings/teams/new/", teams.team_create, name="team_create"),
    path("settings/teams/<uuid:code>/", teams.team_update, name="team_update"),
    path("settings/teams/<uuid:code>/delete/", teams.team_delete, name="team_delete"),
    path(
        "settings/members/<int:membership_id>/capacity/",
        teams.member_capacity,
        name="member_capacity",
    ),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("settings/api-keys/", views.api_key_list, name="api_key_list"),
    path("settings/api-keys/new/", views.api_key_create, name="api_key_create"),
    path("settings/api-keys/<uuid:code>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]
