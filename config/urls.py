from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

from config import pwa
from config.health import healthz

admin.site.site_header = "Porfin"
admin.site.site_title = "Porfin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("sw.js", pwa.service_worker, name="service_worker"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("inbox.urls")),
    path("assistants/", include("assistants.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("flows/", include("flows.urls")),
    path("reports/", include("reports.urls")),
    path("", include("integrations.urls")),
    path("api/", include("config.api")),
]

if settings.DEBUG:
    urlpatterns += [path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT})]
