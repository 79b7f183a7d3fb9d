from django.urls import include, path

from integrations import views

urlpatterns = [
    path("", include("integrations.urls_web")),  # WhatsApp Web numbers (Evolution API)
    path("settings/numbers/", views.number_list, name="number_list"),
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
