from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import access
from integrations import selectors


@require_GET
@access.section_required("settings")
def number_list(request):
    numbers = selectors.numbers_of(request.organization)
    for number in numbers:
        number.webhook_url = selectors.webhook_url(request, number)
    return render(request, "integrations/number_list.html", {"numbers": numbers})
