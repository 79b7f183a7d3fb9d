from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import access
from accounts import selectors as account_selectors
from inbox import selectors
from inbox.access import get_chat_for_member


@require_GET
@access.section_required("dashboard")
def home(request):
    context = {
        "counts": selectors.inbox_counts(request.membership),
        "contacts": selectors.contact_count(request.membership),
        "roles": account_selectors.role_counts(request.organization),
    }
    return render(request, "inbox/home.html", context)


@require_GET
@access.section_required("chats")
def chat_list(request):
    chats = selectors.chat_list(request.membership)[:50]
    return render(request, "inbox/chat_list.html", {"chats": chats})


@require_GET
@access.section_required("chats")
def chat_detail(request, code):
    chat = get_chat_for_member(request.membership, code)
    messages = chat.messages.select_related("author_user").order_by("-timestamp", "-id")[:50]
    return render(
        request,
        "inbox/chat_detail.html",
        {
            "chat": chat,
            "chat_messages": reversed(list(messages)),
            "chats": selectors.chat_list(request.membership)[:50],
        },
    )


@require_GET
@access.section_required("chats")
def contact_list(request):
    query = request.GET.get("q", "").strip()
    contacts = selectors.contact_search(request.membership, query)[:100]
    return render(request, "inbox/contact_list.html", {"contacts": contacts, "query": query})
