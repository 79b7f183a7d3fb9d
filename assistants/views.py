from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import access


@require_GET
@access.section_required("assistants")
def index(request):
    return render(
        request,
        "assistants/index.html",
        {"can_edit": access.can_edit(request.membership, "assistants")},
    )
