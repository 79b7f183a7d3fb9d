"""bench/api_load.py's URL table: the product's, plus a trivial Django JSON view at
``/bench/json/`` (the reference the API is measured against), and at ``/api/bench-json/``
(called with a Bearer header: the same stack as API-key calls). Served only by the bench, through
``bench/api_reference_settings.py``; it also works on an older checkout (before/after runs)."""

from django.http import JsonResponse
from django.urls import path

from config.urls import *  # noqa: F403  (the error handlers too)
from config.urls import urlpatterns as product_urlpatterns


def reference(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/json/", reference),
    # The same view where API-key calls are served (config.asgi: "Bearer" under /api/).
    path("api/bench-json/", reference),
    *product_urlpatterns,
]
