from django.apps import apps
from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from accounts import access
from accounts import selectors as account_selectors
from inbox import contacts, selectors, services, teamwork
from inbox.access import get_chat_for_member, get_media_for_member, get_message_in_chat
from inbox.forms import (
    AssignForm,
    ComposerForm,
    ContactForm,
    NoteForm,
    PriorityForm,
    QuickReplyForm,
    ReactionForm,
    RichMessageForm,
    SavedViewForm,
    SendLaterForm,
    SnoozeForm,
    StatusForm,
    TagsForm,
    TemplateSendForm,
)
from inbox.media import media_response
from inbox.models import Chat, Message, SavedView, ScheduledMessage


@require_GET
@access.section_required("dashboard")
def home(request):
    context = {
        "counts": selectors.inbox_counts(request.membership),
        "contacts": selectors.contact_count(request.membership),
        "roles": account_selectors.role_counts(request.organization),
    }
    return render(request, "inbox/home.html", context)


def _list_context(request, filters):
    chats = selectors.chat_page(request.membership, filters)
    return {
        "filters": filters,
        "chats": chats[: selectors.PAGE_SIZE],
        "has_more": len(chats) > selectors.PAGE_SIZE,
        "counts": selectors.chat_counts(request.membership, filters),
        "numbers": request.organization and _numbers(request),
        "all_tags": selectors.organization_tags(request.membership),
        "saved_views": SavedView.objects.filter(
            organization=request.organization, user=request.user
        ),
        "priority_filters": PRIORITY_FILTERS,
    }


def _numbers(request):
    from integrations.selectors import numbers_of

    return numbers_of(request.organization)


PRIORITY_FILTERS = [
    ("4", _lazy("Urgent")),
    ("3+", _lazy("High or urgent")),
    ("2+", _lazy("Medium or higher")),
    ("1+", _lazy("Any priority set")),
    ("0", _lazy("No priority")),
]

SNOOZE_PRESETS = [(1, _lazy("In 1 hour")), (4, _lazy("In 4 hours")), (24, _lazy("In 24 hours"))]


def _chat_context(request, chat):
    entries, has_older = selectors.thread_page(chat)
    templates = selectors.number_templates(chat)
    approved = [template for template in templates if template.status.upper() == "APPROVED"]
    return {
        "chat": chat,
        "entries": entries,
        "has_older": has_older,
        "composer": ComposerForm(),
        "note_form": NoteForm(),
        "rich_form": RichMessageForm(),
        "teammates": selectors.teammates(request.membership),
        "can_assign_others": access.level_for(request.membership, "chats") == access.Level.FULL,
        "quick_replies": [
            {
                "shortcut": reply.shortcut,
                "text": teamwork.quick_reply_fill(reply.text, chat=chat, user=request.user),
                "owner_id": reply.owner_id,
            }
            for reply in teamwork.quick_replies_for(
                organization=request.organization, user=request.user
            )
        ],
        "snooze_presets": SNOOZE_PRESETS,
        "mention_people": teamwork.mention_candidates(request.organization),
        "scheduled": _scheduled(chat),
        "priorities": Chat.Priority.choices,
        "past_chats": selectors.past_chats(chat),
        "contact_form": ContactForm(instance=chat.contact),
        "templates_by_name": {template.name: template.components for template in templates},
        # Assistants (an app above the inbox) contribute the analysis card, when installed.
        "analysis_template": "assistants/_analysis.html" if apps.is_installed("assistants") else "",
        "approved_templates": approved,
        "template_components": {str(template.pk): template.components for template in approved},
    }


@require_GET
@access.section_required("chats")
def chat_list(request):
    """The inbox: chat list on the left, and the chosen chat (if any) on the right."""
    filters = selectors.ChatFilters.from_query(request.GET, request.membership)
    context = _list_context(request, filters)
    if request.htmx and request.htmx.target == "chat-list":
        return render(request, "inbox/inbox.html#chat-list", context)
    return render(request, "inbox/inbox.html", context)


@require_GET
@access.section_required("chats")
def chat_detail(request, code):
    chat = get_chat_for_member(request.membership, code)
    services.chat_mark_read(chat=chat, user=request.user)
    teamwork.notifications_read(user=request.user, organization=request.organization, chat=chat)
    context = _chat_context(request, chat)
    if request.htmx and request.htmx.target == "chat-pane":
        return render(request, "inbox/inbox.html#chat-pane", context)
    filters = selectors.ChatFilters.from_query(request.GET, request.membership)
    return render(request, "inbox/inbox.html", {**_list_context(request, filters), **context})


@require_GET
@access.section_required("chats")
def chat_items(request):
    """More of the chat list (infinite scroll), after the chat ``before``."""
    filters = selectors.ChatFilters.from_query(request.GET, request.membership)
    before = get_chat_for_member(request.membership, request.GET.get("before"))
    chats = selectors.chat_page(request.membership, filters, before=before)
    context = {
        "filters": filters,
        "chats": chats[: selectors.PAGE_SIZE],
        "has_more": len(chats) > selectors.PAGE_SIZE,
    }
    return render(request, "inbox/inbox.html#chat-items", context)


@require_GET
@access.section_required("chats")
def chat_item(request, code):
    """One chat's row in the list, re-rendered when a live event says it changed; empty (204)
    when, with the list's filters (sent along), the chat no longer belongs there — a chat
    resolved while the "open" list is on screen leaves it."""
    chat = get_chat_for_member(request.membership, code)
    if request.GET.get("status"):
        filters = selectors.ChatFilters.from_query(request.GET, request.membership)
        if not selectors.chat_matches(request.membership, filters, chat):
            return HttpResponse(status=204)
    return render(request, "inbox/inbox.html#chat-item", {"item": chat})


@require_POST
@access.section_required("chats")
def chat_read(request, code):
    """The open chat's new messages are on screen: its unread count stays at zero."""
    chat = get_chat_for_member(request.membership, code)
    services.chat_mark_read(chat=chat, user=request.user)
    teamwork.notifications_read(user=request.user, organization=request.organization, chat=chat)
    return HttpResponse(status=204)


@require_GET
@access.section_required("chats")
def chat_counts(request):
    filters = selectors.ChatFilters.from_query(request.GET, request.membership)
    context = {"filters": filters, "counts": selectors.chat_counts(request.membership, filters)}
    return render(request, "inbox/inbox.html#chat-tabs", context)


@require_GET
@access.section_required("chats")
def thread_older(request, code):
    chat = get_chat_for_member(request.membership, code)
    before = get_message_in_chat(chat, request.GET.get("before"))
    entries, has_older = selectors.thread_page(chat, before=before)
    context = {"chat": chat, "entries": entries, "has_older": has_older}
    return render(request, "inbox/inbox.html#older", context)


@require_GET
@access.section_required("chats")
def thread_after(request, code):
    """Entries newer than ``after``: how a reconnected page catches up without duplicates."""
    chat = get_chat_for_member(request.membership, code)
    after = get_message_in_chat(chat, request.GET.get("after"))
    entries = selectors.messages_after(chat, after)
    response = render(request, "inbox/inbox.html#entries", {"chat": chat, "entries": entries})
    response["X-Chat-Seq"] = str(Chat.objects.values_list("seq", flat=True).get(pk=chat.pk))
    return response


@require_GET
@access.section_required("chats")
def media_file(request, code):
    """A chat's file, for members who may see that chat (``inbox.media`` sets the headers)."""
    return media_response(get_media_for_member(request.membership, code))


@require_GET
@access.section_required("chats")
def message_entry(request, code, message_code):
    chat = get_chat_for_member(request.membership, code)
    message = get_object_or_404(selectors.timeline_entries(), chat=chat, code=message_code)
    context = {
        "chat": chat,
        "message": message,
        "templates_by_name": TemplateSendForm.templates_by_name(chat),
    }
    return render(request, "inbox/_message.html", context)


def _entry_response(request, chat, message, status=200):
    message = selectors.timeline_entries().get(pk=message.pk)
    context = {
        "chat": chat,
        "message": message,
        "templates_by_name": TemplateSendForm.templates_by_name(chat),
    }
    return render(request, "inbox/_message.html", context, status=status)


def _error(request, message: str, status: int = 400):
    """A form error the composer shows in place (htmx) or as a flash message."""
    if request.htmx:
        return HttpResponse(
            f'<p class="composer-error" role="alert">{_escape(message)}</p>', status=status
        )
    flash.error(request, message)
    return redirect("chat_detail", request.resolver_match.kwargs["code"])


def _escape(text: str) -> str:
    from django.utils.html import escape

    return escape(text)


@require_POST
@access.section_required("chats", edit=True)
def send_message(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = ComposerForm(request.POST, request.FILES)
    if not form.is_valid():
        return _error(request, " ".join(e for errors in form.errors.values() for e in errors))
    reply_to = None
    if form.cleaned_data["reply_to"]:
        reply_to = get_message_in_chat(chat, form.cleaned_data["reply_to"])
    try:
        if form.cleaned_data["file"]:
            message = services.message_send_attachment(
                chat=chat,
                upload=form.cleaned_data["file"],
                caption=form.cleaned_data["text"],
                author_user=request.user,
                reply_to=reply_to,
            )
        else:
            message = services.message_send(
                chat=chat,
                message_type=Message.Type.TEXT,
                content={
                    "body": form.cleaned_data["text"],
                    "preview_url": "http" in form.cleaned_data["text"],
                },
                author_user=request.user,
                reply_to=reply_to,
            )
    except ValidationError as error:
        return _error(request, " ".join(error.messages))
    if not request.htmx:
        return redirect("chat_detail", chat.code)
    return _entry_response(request, chat, message, status=201)


@require_POST
@access.section_required("chats", edit=True)
def send_rich(request, code):
    """A location, a contact card, reply buttons or a list from the composer."""
    chat = get_chat_for_member(request.membership, code)
    form = RichMessageForm(request.POST)
    if not form.is_valid():
        return _error(request, " ".join(e for errors in form.errors.values() for e in errors))
    message_type, content = form.message()
    try:
        message = services.message_send(
            chat=chat, message_type=message_type, content=content, author_user=request.user
        )
    except ValidationError as error:
        return _error(request, " ".join(error.messages))
    if not request.htmx:
        return redirect("chat_detail", chat.code)
    return _entry_response(request, chat, message, status=201)


@require_POST
@access.section_required("chats", edit=True)
def send_template(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = TemplateSendForm(request.POST, chat=chat)
    if not form.is_valid():
        return _error(request, " ".join(e for errors in form.errors.values() for e in errors))
    try:
        message = services.message_send(
            chat=chat,
            message_type=Message.Type.TEMPLATE,
            content=form.template_content(),
            author_user=request.user,
        )
    except ValidationError as error:
        return _error(request, " ".join(error.messages))
    if not request.htmx:
        return redirect("chat_detail", chat.code)
    return _entry_response(request, chat, message, status=201)


@require_POST
@access.section_required("chats", edit=True)
def react(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = ReactionForm(request.POST)
    if not form.is_valid():
        return _error(request, _("Choose an emoji."))
    target = get_message_in_chat(chat, form.cleaned_data["message"])
    try:
        services.message_react(
            chat=chat, target=target, emoji=form.cleaned_data["emoji"], author_user=request.user
        )
    except ValidationError as error:
        return _error(request, " ".join(error.messages))
    return _entry_response(request, chat, target)


@require_POST
@access.section_required("chats", edit=True)
def add_note(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _error(request, _("Write something in the note."))
    note = services.note_add(chat=chat, author=request.user, body=form.cleaned_data["body"])
    if not request.htmx:
        return redirect("chat_detail", chat.code)
    return _entry_response(request, chat, note, status=201)


def _header_response(request, chat):
    """After a conversation action: the re-rendered header (htmx) or back to the chat page."""
    if not request.htmx:
        return redirect("chat_detail", chat.code)
    chat = get_chat_for_member(request.membership, chat.code)
    response = render(request, "inbox/inbox.html#chat-header", _chat_context(request, chat))
    return trigger_client_event(response, "chat-changed", {"chat": str(chat.code)})


@require_POST
@access.section_required("chats", edit=True)
def assign(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = AssignForm(request.POST, membership=request.membership)
    if not form.is_valid():
        raise PermissionDenied(" ".join(e for errors in form.errors.values() for e in errors))
    services.chat_assign(chat=chat, assignee=form.cleaned_data["assignee"], actor=request.user)
    if (
        request.htmx
        and not selectors.chats_visible_to(request.membership).filter(pk=chat.pk).exists()
    ):
        return HttpResponse(status=204, headers={"HX-Redirect": "/inbox/"})
    return _header_response(request, chat)


@require_POST
@access.section_required("chats", edit=True)
def set_status(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _error(request, _("Unknown status."))
    services.chat_set_status(chat=chat, status=form.cleaned_data["status"], actor=request.user)
    return _header_response(request, chat)


@require_POST
@access.section_required("chats", edit=True)
def set_ai(request, code):
    chat = get_chat_for_member(request.membership, code)
    enabled = request.POST.get("enabled") == "on"
    services.chat_set_ai(chat=chat, enabled=enabled, actor=request.user)
    return _header_response(request, chat)


@require_POST
@access.section_required("chats", edit=True)
def set_tags(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = TagsForm(request.POST)
    if not form.is_valid():
        return _error(request, _("Tags are words separated by commas."))
    services.chat_set_tags(chat=chat, tags=form.cleaned_data["tags"], actor=request.user)
    return _header_response(request, chat)


@require_POST
@access.section_required("chats", edit=True)
def contact_update(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = ContactForm(request.POST, instance=chat.contact)
    if form.is_valid():
        contacts.contact_update(contact=chat.contact, data=form.cleaned_data)
        flash.success(request, _("Contact saved."))
    context = {**_chat_context(request, chat), "contact_form": form}
    status = 200 if form.is_valid() else 400
    if request.htmx:
        return render(request, "inbox/inbox.html#contact-panel", context, status=status)
    return redirect("chat_detail", chat.code)


@require_http_methods(["GET", "POST"])
@access.section_required("chats")
def quick_replies(request):
    """Shared replies (managed with full inbox access) and each member's personal ones."""
    can_share = access.level_for(request.membership, "chats") == access.Level.FULL
    can_edit = access.can_edit(request.membership, "chats")
    form = QuickReplyForm(
        request.POST or None, organization=request.organization, can_share=can_share
    )
    if request.method == "POST":
        if not can_edit:
            return HttpResponse(_("You cannot write quick replies."), status=403)
        if form.is_valid():
            personal = form.cleaned_data["personal"] or not can_share
            services.quick_reply_save(
                organization=request.organization,
                author=request.user,
                shortcut=form.cleaned_data["shortcut"],
                text=form.cleaned_data["text"],
                owner=request.user if personal else None,
            )
            flash.success(request, _("Quick reply saved."))
            return redirect("quick_replies")
    replies = teamwork.quick_replies_for(organization=request.organization, user=request.user)
    return render(
        request,
        "inbox/quick_replies.html",
        {"form": form, "replies": replies, "can_edit": can_edit, "can_share": can_share},
    )


@require_POST
@access.section_required("chats", edit=True)
def quick_reply_delete(request, reply_code):
    reply = get_object_or_404(
        teamwork.quick_replies_for(organization=request.organization, user=request.user),
        code=reply_code,
    )
    if reply.owner_id is None and access.level_for(request.membership, "chats") != (
        access.Level.FULL
    ):
        return HttpResponse(status=403)
    reply.delete()
    return redirect("quick_replies")


# --- Team inbox: snooze, priority, send later, saved views, notifications -----------------------


def _scheduled(chat):
    return list(
        ScheduledMessage.objects.filter(
            chat=chat,
            status__in=(ScheduledMessage.Status.PENDING, ScheduledMessage.Status.FAILED),
        ).order_by("send_at")[:20]
    )


def _scheduled_response(request, chat, error: str = ""):
    if not request.htmx:
        if error:
            flash.error(request, error)
        return redirect("chat_detail", chat.code)
    context = {"chat": chat, "scheduled": _scheduled(chat), "scheduled_error": error}
    return render(request, "inbox/inbox.html#scheduled-list", context, status=400 if error else 200)


@require_POST
@access.section_required("chats", edit=True)
def send_later(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = SendLaterForm(request.POST)
    if not form.is_valid():
        return _scheduled_response(request, chat, _("Write the message and choose when."))
    try:
        teamwork.scheduled_create(
            chat=chat,
            author=request.user,
            text=form.cleaned_data["text"],
            send_at=form.cleaned_data["send_at"],
        )
    except ValidationError as error:
        return _scheduled_response(request, chat, " ".join(error.messages))
    return _scheduled_response(request, chat)


@require_POST
@access.section_required("chats", edit=True)
def scheduled_cancel(request, code, item_code):
    chat = get_chat_for_member(request.membership, code)
    item = get_object_or_404(ScheduledMessage, chat=chat, code=item_code)
    teamwork.scheduled_cancel(item=item)
    return _scheduled_response(request, chat)


@require_POST
@access.section_required("chats", edit=True)
def snooze(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        return _error(request, _("Choose until when."))
    try:
        teamwork.chat_snooze(chat=chat, until=form.cleaned_data["until"], actor=request.user)
    except ValidationError as error:
        return _error(request, " ".join(error.messages))
    return _header_response(request, chat)


@require_POST
@access.section_required("chats", edit=True)
def set_priority(request, code):
    chat = get_chat_for_member(request.membership, code)
    form = PriorityForm(request.POST)
    if not form.is_valid():
        return _error(request, _("Unknown priority."))
    teamwork.chat_set_priority(
        chat=chat, priority=form.cleaned_data["priority"], actor=request.user
    )
    return _header_response(request, chat)


@require_POST
@access.section_required("chats")
def saved_view_save(request):
    form = SavedViewForm(request.POST)
    if form.is_valid():
        view = teamwork.saved_view_save(
            user=request.user,
            organization=request.organization,
            name=form.cleaned_data["name"],
            query=form.cleaned_data["query"],
        )
        return redirect(f"/inbox/?{view.query}")
    flash.error(request, _("Name the view."))
    return redirect("chat_list")


@require_POST
@access.section_required("chats")
def saved_view_delete(request, view_code):
    get_object_or_404(
        SavedView, organization=request.organization, user=request.user, code=view_code
    ).delete()
    return redirect("chat_list")


@require_POST
@access.section_required("chats")
def notifications_read(request):
    teamwork.notifications_read(user=request.user, organization=request.organization)
    if request.htmx:
        return HttpResponse(status=204)
    target = request.POST.get("next") or ""
    return redirect(target if target.startswith("/") and not target.startswith("//") else "home")
