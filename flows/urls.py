from django.urls import path

from flows import views

urlpatterns = [
    path("", views.flow_list, name="flow_list"),
    path("new/", views.flow_create, name="flow_create"),
    path("import/", views.flow_import, name="flow_import"),
    path("<uuid:code>/", views.flow_edit, name="flow_edit"),
    path("<uuid:code>/save/", views.flow_save, name="flow_save"),
    path("<uuid:code>/check/", views.flow_check, name="flow_check"),
    path("<uuid:code>/publish/", views.flow_publish, name="flow_publish"),
    path("<uuid:code>/unpublish/", views.flow_unpublish, name="flow_unpublish"),
    path("<uuid:code>/rollback/<int:number>/", views.flow_rollback, name="flow_rollback"),
    path("<uuid:code>/duplicate/", views.flow_duplicate, name="flow_duplicate"),
    path("<uuid:code>/export/", views.flow_export, name="flow_export"),
    path("<uuid:code>/delete/", views.flow_delete, name="flow_delete"),
    path("<uuid:code>/media/", views.flow_media_upload, name="flow_media_upload"),
]
