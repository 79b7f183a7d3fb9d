from django.contrib import admin
from django.urls import include, path

from kernel import health, pwa
from reports import metrics

admin.site.site_header = "Porfin"
admin.site.site_title = "Porfin"

urlpatterns = [
    path("healthz", health.ready, name="healthz"),
    path("healthz/live", health.live, name="healthz_live"),
    path("healthz/ready", health.ready, name="healthz_ready"),
    path("healthz/workers", health.workers, name="healthz_workers"),
    path("metrics", metrics.metrics, name="metrics"),
    # Before the app URLs: an integrator's call is matched without trying every page's pattern
    # first (a tenth of a chat list's time).
    path("api/", include("config.api")),
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("sw.js", pwa.service_worker, name="service_worker"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("inbox.urls")),
    path("assistants/", include("assistants.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("agenda/", include("appointments.urls")),
    path("flows/", include("flows.urls")),
    path("reports/", include("reports.urls")),
    path("", include("integrations.urls")),
]

# JSON under /api/ (config.api), Django's pages elsewhere.
handler400 = "config.api.bad_request"
handler403 = "config.api.permission_denied"
handler404 = "config.api.not_found"
handler500 = "config.api.server_error"
