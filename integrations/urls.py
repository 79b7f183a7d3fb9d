from django.urls import include, path

from integrations import views, views_numbers

urlpatterns = [
    path("", include("integrations.urls_web")),  # WhatsApp Web numbers (Evolution API)
    path("settings/numbers/", views.number_list, name="number_list"),
    path("settings/numbers/new/", views_numbers.number_add, name="number_add"),
    path("settings/numbers/<uuid:code>/", views_numbers.number_detail, name="number_detail"),
    path("settings/numbers/<uuid:code>/edit/", views_numbers.number_edit, name="number_edit"),
    path(
        "settings/numbers/<uuid:code>/test-webhook/",
        views_numbers.number_webhook_test,
        name="number_webhook_test",
    ),
    path(
        "settings/numbers/<uuid:code>/refresh/",
        views_numbers.number_refresh,
        name="number_refresh",
    ),
    path("settings/numbers/<uuid:code>/toggle/", views_numbers.number_toggle, name="number_toggle"),
    path("settings/numbers/<uuid:code>/delete/", views_numbers.number_delete, name="number_delete"),
    path(
        "settings/numbers/<uuid:code>/sync-templates/",
        views.number_templates_sync,
        name="number_templates_sync",
    ),
    path("webhooks/whatsapp/<str:key>/", views.whatsapp_webhook, name="whatsapp_webhook"),
    path("sandbox/phone/", views.sandbox_phone, name="sandbox_phone"),
    path("settings/webhooks/", views.webhook_list, name="webhook_list"),
    path("settings/webhooks/new/", views.webhook_create, name="webhook_create"),
    path("settings/webhooks/<uuid:code>/", views.webhook_detail, name="webhook_detail"),
    path("settings/webhooks/<uuid:code>/toggle/", views.webhook_toggle, name="webhook_toggle"),
    path("settings/webhooks/<uuid:code>/delete/", views.webhook_delete, name="webhook_delete"),
    path(
        "settings/webhooks/deliveries/<uuid:code>/resend/",
        views.webhook_delivery_resend,
        name="webhook_delivery_resend",
    ),
]
