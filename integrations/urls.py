from django.urls import path

from integrations import views

urlpatterns = [
    path("settings/numbers/", views.number_list, name="number_list"),
]
