"""The progressive-web-app files, served from the site root so their scope is the whole app."""

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET


def _static_file(path: str, content_type: str):
    location = finders.find(path) or (settings.STATIC_ROOT / path)
    try:
        return FileResponse(open(location, "rb"), content_type=content_type)  # noqa: SIM115
    except OSError as error:
        raise Http404 from error


@require_GET
@cache_control(max_age=3600)
def manifest(request):
    return _static_file("manifest.webmanifest", "application/manifest+json")


@require_GET
@cache_control(no_cache=True)
def service_worker(request):
    response = _static_file("js/sw.js", "application/javascript")
    response["Service-Worker-Allowed"] = "/"
    return response
