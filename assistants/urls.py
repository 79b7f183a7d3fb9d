from django.urls import path

from assistants import views

urlpatterns = [
    path("", views.assistant_list, name="assistants_index"),
    path("new/", views.assistant_create, name="assistant_create"),
    path("settings/", views.ai_settings, name="ai_settings"),
    path("settings/follow-ups/", views.follow_up_settings, name="follow_up_settings"),
    path("<uuid:code>/", views.assistant_detail, name="assistant_detail"),
    path("<uuid:code>/edit/", views.assistant_update, name="assistant_update"),
    path("<uuid:code>/knowledge/", views.knowledge_add, name="knowledge_add"),
    path(
        "<uuid:code>/knowledge/<uuid:source_code>/delete/",
        views.knowledge_delete,
        name="knowledge_delete",
    ),
    path("<uuid:code>/playground/", views.assistant_playground, name="assistant_playground"),
    path("chats/<uuid:code>/analysis/", views.chat_analysis, name="chat_analysis"),
    path("chats/<uuid:code>/analyze/", views.chat_analyze, name="chat_analyze"),
    path(
        "messages/<uuid:code>/transcript-summary/",
        views.transcript_summary,
        name="transcript_summary",
    ),
]
