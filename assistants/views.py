import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access
from assistants import selectors, services
from assistants.access import (
    get_analyzable_chat_for_user,
    get_assistant_for_user,
    get_editable_assistant_for_user,
    get_editable_source_for_user,
    get_summarizable_message_for_user,
)
from assistants.forms import (
    AISettingsForm,
    AssistantForm,
    FollowUpSettingsForm,
    KnowledgeForm,
    PlaygroundForm,
)
from assistants.models import AISettings, Assistant, KnowledgeSource

PLAYGROUND_TURNS = 20


def _offline(organization) -> bool:
    return services.provider_for_organization(organization.pk).offline


@require_GET
@access.section_required("assistants")
def assistant_list(request):
    return render(
        request,
        "assistants/assistant_list.html",
        {
            "assistants": selectors.assistant_list(request.organization),
            "can_edit": access.can_edit(request.membership, "assistants"),
            "offline": _offline(request.organization),
        },
    )


@require_http_methods(["GET", "POST"])
@access.section_required("assistants", edit=True)
def assistant_create(request):
    instance = Assistant(organization=request.organization)
    form = AssistantForm(request.POST or None, instance=instance, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        assistant = form.save(commit=False)
        services.assistant_save(
            assistant=assistant, user=request.user, numbers=form.cleaned_data["default_for_numbers"]
        )
        messages.success(request, _("Assistant created."))
        return redirect("assistant_detail", code=assistant.code)
    return render(request, "assistants/assistant_form.html", {"form": form})


@require_GET
@access.section_required("assistants")
def assistant_detail(request, code):
    assistant, can_edit = get_assistant_for_user(request, code)
    return render(
        request, "assistants/assistant_detail.html", _detail_context(request, assistant, can_edit)
    )


def _detail_context(request, assistant, can_edit, form=None, knowledge_form=None):
    return {
        "assistant": assistant,
        "can_edit": can_edit,
        "form": form or AssistantForm(instance=assistant, organization=request.organization),
        "knowledge_form": knowledge_form or KnowledgeForm(),
        "sources": assistant.sources.all(),
        "versions": assistant.versions.select_related("created_by")[:20],
        "usage": selectors.assistant_month_usage(assistant),
        "offline": _offline(request.organization),
    }


@require_POST
@access.section_required("assistants", edit=True)
def assistant_update(request, code):
    assistant = get_editable_assistant_for_user(request, code)
    form = AssistantForm(request.POST, instance=assistant, organization=request.organization)
    if not form.is_valid():
        context = _detail_context(request, assistant, True, form=form)
        return render(request, "assistants/assistant_detail.html", context, status=400)
    version = services.assistant_save(
        assistant=form.save(commit=False),
        user=request.user,
        numbers=form.cleaned_data["default_for_numbers"],
    )
    messages.success(request, _("Saved as version %(n)s.") % {"n": version.number})
    return redirect("assistant_detail", code=assistant.code)


@require_POST
@access.section_required("assistants", edit=True)
def knowledge_add(request, code):
    assistant = get_editable_assistant_for_user(request, code)
    form = KnowledgeForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        faq = None
        if data["kind"] == KnowledgeSource.Kind.FAQ:
            faq = services.parse_faq(data["text"])
        try:
            source = services.knowledge_add(
                assistant=assistant, kind=data["kind"], title=data["title"], text=data["text"],
                faq=faq, url=data["url"], upload=data["upload"],
            )  # fmt: skip
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("“%(title)s” added: %(n)s passages indexed.")
                % {"title": source.title, "n": source.chunk_count},
            )
            return redirect("assistant_detail", code=assistant.code)
    context = _detail_context(request, assistant, True, knowledge_form=form)
    return render(request, "assistants/assistant_detail.html", context, status=400)


@require_POST
@access.section_required("assistants", edit=True)
def knowledge_delete(request, code, source_code):
    source = get_editable_source_for_user(request, code, source_code)
    source.delete()
    messages.success(request, _("Source removed."))
    return redirect("assistant_detail", code=code)


def _playground_turns(raw: str) -> list[dict]:
    try:
        turns = json.loads(raw or "[]")
    except ValueError:
        return []
    if not isinstance(turns, list):
        return []
    return [
        t for t in turns
        if isinstance(t, dict) and t.get("role") in ("user", "assistant")
        and isinstance(t.get("content"), str)
    ][-PLAYGROUND_TURNS:]  # fmt: skip


@require_http_methods(["GET", "POST"])
@access.section_required("assistants")
def assistant_playground(request, code):
    assistant, can_edit = get_assistant_for_user(request, code)
    form = PlaygroundForm(request.POST or None)
    turns = _playground_turns(request.POST.get("history", ""))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            history = [{"role": t["role"], "content": t["content"]} for t in turns]
            turn = services.playground_turn(
                assistant=assistant, history=history, text=form.cleaned_data["text"]
            )
            turns.append({"role": "user", "content": form.cleaned_data["text"]})
            turns.append(
                {
                    "role": "assistant",
                    "content": turn.text if not turn.handoff_reason else assistant.handoff_message,
                    "meta": {
                        "sources": turn.sources, "tool_calls": turn.tool_calls,
                        "tokens_in": turn.tokens_in, "tokens_out": turn.tokens_out,
                        "latency_ms": turn.latency_ms, "handoff": turn.handoff_reason,
                        "offline": turn.offline,
                    },
                }
            )  # fmt: skip
            form = PlaygroundForm()
        else:
            status = 400
    context = {
        "assistant": assistant,
        "form": form,
        "turns": turns,
        "history_json": json.dumps(turns[-PLAYGROUND_TURNS:], ensure_ascii=False),
        "offline": _offline(request.organization),
    }
    template = "assistants/assistant_playground.html"
    if request.htmx:
        template += "#conversation"
    return render(request, template, context, status=status)


@require_POST
@access.section_required("chats")
def chat_analyze(request, code):
    chat = get_analyzable_chat_for_user(request, code)
    analysis = services.chat_analyze(chat=chat)
    return render(request, "assistants/_analysis.html", {"analysis": analysis, "chat": chat})


@require_GET
@access.section_required("chats")
def chat_analysis(request, code):
    chat = get_analyzable_chat_for_user(request, code)
    return render(
        request,
        "assistants/_analysis.html",
        {"analysis": selectors.latest_analysis(chat), "chat": chat},
    )


@require_http_methods(["GET", "POST"])
@access.section_required("assistants", edit=True)
def ai_settings(request):
    instance = AISettings.objects.filter(organization=request.organization).first()
    instance = instance or AISettings(organization=request.organization)
    previous_key = instance.api_key
    form = AISettingsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        config = form.save(commit=False)
        if form.cleaned_data["clear_api_key"]:
            config.api_key = ""
        elif not form.cleaned_data["api_key"]:
            config.api_key = previous_key
        config.save()
        messages.success(request, _("AI settings saved."))
        return redirect("assistants_index")
    context = {
        "form": form,
        "settings": instance,
        "offline": _offline(request.organization),
        "follow_up_form": FollowUpSettingsForm(
            instance=instance, organization=request.organization
        ),
    }
    return render(request, "assistants/ai_settings.html", context)


@require_http_methods(["GET", "POST"])
@access.section_required("assistants", edit=True)
def follow_up_settings(request):
    """What the conversation analysis' follow-up date does (``assistants.followups``)."""
    instance = AISettings.objects.filter(organization=request.organization).first()
    instance = instance or AISettings(organization=request.organization)
    form = FollowUpSettingsForm(
        request.POST or None, instance=instance, organization=request.organization
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        if request.htmx:
            context = {"follow_up_form": form, "settings": instance, "saved": True}
            return render(request, "assistants/ai_settings.html#follow-ups", context)
        messages.success(request, _("Follow-up settings saved."))
        return redirect("ai_settings")
    status = 400 if request.method == "POST" else 200
    context = {"follow_up_form": form, "settings": instance}
    if request.htmx:
        return render(request, "assistants/ai_settings.html#follow-ups", context, status=status)
    context["form"] = AISettingsForm(instance=instance)
    context["offline"] = _offline(request.organization)
    return render(request, "assistants/ai_settings.html", context, status=status)


@require_POST
@access.section_required("chats", edit=True)
def transcript_summary(request, code):
    message = get_summarizable_message_for_user(request, code)
    kind = request.POST.get("kind", "clinical_note")
    try:
        summary = services.transcript_summarize(message=message, kind=kind)
    except ValidationError as error:
        return render(
            request, "assistants/_transcript_summary.html", {"error": error.messages[0]}, status=400
        )
    return render(request, "assistants/_transcript_summary.html", {"summary": summary})
