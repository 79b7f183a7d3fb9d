from django.urls import path

from integrations import views

urlpatterns = [
    path("settings/numbers/", views.number_list, name="number_list"),
    path("webhooks/whatsapp/<str:key>/", views.whatsapp_webhook, name="whatsapp_webhook"),
    path("sandbox/phone/", views.sandbox_phone, name="sandbox_phone"),
]
