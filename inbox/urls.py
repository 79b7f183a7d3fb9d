from django.urls import path

from inbox import views

urlpatterns = [
    path("", views.home, name="home"),
    path("inbox/", views.chat_list, name="chat_list"),
    path("inbox/<uuid:code>/", views.chat_detail, name="chat_detail"),
    path("contacts/", views.contact_list, name="contact_list"),
]
