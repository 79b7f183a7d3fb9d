from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

from config.health import healthz

admin.site.site_header = "Porfin"
admin.site.site_title = "Porfin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("inbox.urls")),
    path("assistants/", include("assistants.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("", include("integrations.urls")),
]

if settings.DEBUG:
    urlpatterns += [path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT})]
