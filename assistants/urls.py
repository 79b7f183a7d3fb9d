from django.urls import path

from assistants import views

urlpatterns = [
    path("", views.index, name="assistants_index"),
]
