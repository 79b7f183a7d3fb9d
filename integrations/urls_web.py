"""WhatsApp Web numbers (Evolution API): webhook and connect pages."""

from django.urls import path

from integrations import views_web

urlpatterns = [
    path("webhooks/evolution/<str:key>/", views_web.evolution_webhook, name="evolution_webhook"),
    path(
        "webhooks/evolution/<str:key>/<str:secret>/",
        views_web.evolution_webhook,
        name="evolution_webhook_secret",
    ),
    path("settings/numbers/web/new/", views_web.web_number_add, name="web_number_add"),
    path(
        "settings/numbers/web/<uuid:code>/", views_web.web_number_connect, name="web_number_connect"
    ),
    path(
        "settings/numbers/web/<uuid:code>/state/",
        views_web.web_number_state,
        name="web_number_state",
    ),
    path(
        "settings/numbers/web/<uuid:code>/reconnect/",
        views_web.web_number_reconnect,
        name="web_number_reconnect",
    ),
    path(
        "settings/numbers/web/<uuid:code>/logout/",
        views_web.web_number_logout,
        name="web_number_logout",
    ),
    path(
        "settings/numbers/web/<uuid:code>/texts/",
        views_web.web_number_text_save,
        name="web_number_text_save",
    ),
    path("sandbox/phone/web/", views_web.web_sandbox_phone, name="web_sandbox_phone"),
    path(
        "sandbox/phone/web/<uuid:code>/pair/", views_web.web_sandbox_pair, name="web_sandbox_pair"
    ),
    path(
        "sandbox/phone/web/<uuid:code>/send/", views_web.web_sandbox_send, name="web_sandbox_send"
    ),
]
