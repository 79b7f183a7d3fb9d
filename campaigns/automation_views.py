"""Automation rules, drip programs (steps, question bank, enrolments) and the public opt-in form.

Every lookup is scoped to ``request.organization`` (other organizations' objects answer 404);
viewing needs the campaigns section, changing needs edit rights on it (admins, managers).
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access as accounts_access
from campaigns import drips
from campaigns.automation_forms import (
    AutomationForm,
    DripProgramForm,
    DripQuestionForm,
    DripStepForm,
    OptInForm,
)
from campaigns.messaging import ActionSkipped
from campaigns.models import (
    Automation,
    AutomationRun,
    DripDelivery,
    DripEnrolment,
    DripProgram,
    DripQuestion,
    DripStep,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
OPTIN_LIMIT = (5, 600)  # submissions per client address per program, per seconds


# --- Access (one function per model; another organization's object is a 404) --------------------


def get_automation_for_member(membership, code, *, edit: bool = False) -> tuple[Automation, bool]:
    automation = get_object_or_404(
        Automation.objects.select_related("organization"),
        organization=membership.organization,
        code=code,
    )
    can_edit = accounts_access.can_edit(membership, "campaigns")
    if edit and not can_edit:
        raise PermissionDenied
    return automation, can_edit


def get_program_for_member(membership, code, *, edit: bool = False) -> tuple[DripProgram, bool]:
    program = get_object_or_404(
        DripProgram.objects.select_related("organization", "number", "template"),
        organization=membership.organization,
        code=code,
    )
    can_edit = accounts_access.can_edit(membership, "campaigns")
    if edit and not can_edit:
        raise PermissionDenied
    return program, can_edit


# --- Automations --------------------------------------------------------------------------------


@require_GET
@accounts_access.section_required("campaigns")
def automation_list(request):
    automations = (
        Automation.objects.filter(organization=request.organization)
        .annotate(
            run_count=Count("runs"),
            failed_count=Count("runs", filter=Q(runs__outcome__in=("failed", "partial"))),
        )
        .order_by("name")
    )
    can_edit = accounts_access.can_edit(request.membership, "campaigns")
    context = {"automations": automations, "can_edit": can_edit}
    return render(request, "campaigns/automations/automation_list.html", context)


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns", edit=True)
def automation_create(request):
    form = AutomationForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        automation = form.save(commit=False)
        automation.organization, automation.created_by = request.organization, request.user
        automation.save()
        messages.success(request, _("Automation saved."))
        return redirect("automation_runs", code=automation.code)
    return render(request, "campaigns/automations/automation_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns", edit=True)
def automation_edit(request, code):
    automation, _can_edit = get_automation_for_member(request.membership, code, edit=True)
    form = AutomationForm(
        request.POST or None, instance=automation, organization=request.organization
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Automation saved."))
        return redirect("automation_runs", code=automation.code)
    context = {"form": form, "automation": automation}
    return render(request, "campaigns/automations/automation_form.html", context)


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def automation_delete(request, code):
    automation, _can_edit = get_automation_for_member(request.membership, code, edit=True)
    automation.delete()
    messages.success(request, _("Automation deleted."))
    return redirect("automation_list")


@require_GET
@accounts_access.section_required("campaigns")
def automation_runs(request, code):
    automation, can_edit = get_automation_for_member(request.membership, code)
    runs = AutomationRun.objects.filter(automation=automation).select_related("contact", "chat")
    outcome = request.GET.get("outcome", "")
    if outcome in AutomationRun.Outcome.values:
        runs = runs.filter(outcome=outcome)
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "automation": automation,
        "can_edit": can_edit,
        "page": page,
        "outcome": outcome,
        "outcomes": AutomationRun.Outcome.choices,
    }
    template = "campaigns/automations/automation_runs.html"
    if request.htmx:
        template += "#runs"
    return render(request, template, context)


# --- Drip programs ------------------------------------------------------------------------------


@require_GET
@accounts_access.section_required("campaigns")
def drip_list(request):
    programs = (
        DripProgram.objects.filter(organization=request.organization)
        .select_related("number")
        .annotate(
            active_count=Count("enrolments", filter=Q(enrolments__status="active"), distinct=True),
            step_count=Count("steps", distinct=True),
            question_count=Count("questions", distinct=True),
        )
    )
    can_edit = accounts_access.can_edit(request.membership, "campaigns")
    return render(
        request, "campaigns/drips/drip_list.html", {"programs": programs, "can_edit": can_edit}
    )


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns", edit=True)
def drip_create(request):
    form = DripProgramForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        program = form.save(commit=False)
        program.organization = request.organization
        program.save()
        messages.success(request, _("Drip program created. Now add its steps or questions."))
        return redirect("drip_detail", code=program.code)
    status = 400 if request.method == "POST" else 200
    return render(request, "campaigns/drips/drip_form.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns")
def drip_detail(request, code):
    program, can_edit = get_program_for_member(
        request.membership, code, edit=request.method == "POST"
    )
    form = DripProgramForm(
        request.POST or None, instance=program, organization=request.organization
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Drip program saved."))
        return redirect("drip_detail", code=program.code)
    context = {
        "program": program,
        "can_edit": can_edit,
        "form": form,
        "steps": program.steps.select_related("template"),
        "step_form": DripStepForm(program=program, initial={"position": program.steps.count() + 1}),
        "form_url": request.build_absolute_uri(reverse("drip_optin", args=[program.form_slug])),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "campaigns/drips/drip_detail.html", context, status=status)


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def drip_step_add(request, code):
    program, _can_edit = get_program_for_member(request.membership, code, edit=True)
    form = DripStepForm(request.POST, program=program)
    if form.is_valid():
        step = form.save(commit=False)
        step.organization, step.program = request.organization, program
        step.save()
        messages.success(request, _("Step added."))
        return redirect("drip_detail", code=program.code)
    context = {
        "program": program,
        "can_edit": True,
        "form": DripProgramForm(instance=program, organization=request.organization),
        "steps": program.steps.select_related("template"),
        "step_form": form,
        "form_url": request.build_absolute_uri(reverse("drip_optin", args=[program.form_slug])),
    }
    return render(request, "campaigns/drips/drip_detail.html", context, status=400)


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def drip_step_delete(request, code, step_code):
    program, _can_edit = get_program_for_member(request.membership, code, edit=True)
    get_object_or_404(DripStep, program=program, code=step_code).delete()
    messages.success(request, _("Step deleted."))
    return redirect("drip_detail", code=program.code)


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns")
def drip_questions(request, code):
    program, can_edit = get_program_for_member(
        request.membership, code, edit=request.method == "POST"
    )
    form = DripQuestionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            question = form.save(commit=False)
            question.organization, question.program = request.organization, program
            question.save()
            messages.success(request, _("Question added."))
            return redirect("drip_questions", code=program.code)
        status = 400
    questions = program.questions.annotate(
        sent_count=Count("deliveries"),
        answer_count=Count("deliveries", filter=Q(deliveries__answer__isnull=False)),
        average_score=Avg("deliveries__score"),
    )
    context = {"program": program, "can_edit": can_edit, "form": form, "questions": questions}
    return render(request, "campaigns/drips/question_list.html", context, status=status)


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def drip_question_delete(request, code, question_code):
    program, _can_edit = get_program_for_member(request.membership, code, edit=True)
    get_object_or_404(DripQuestion, program=program, code=question_code).delete()
    messages.success(request, _("Question deleted."))
    return redirect("drip_questions", code=program.code)


@require_GET
@accounts_access.section_required("campaigns")
def drip_enrolments(request, code):
    program, can_edit = get_program_for_member(request.membership, code)
    enrolments = (
        DripEnrolment.objects.filter(program=program)
        .select_related("contact")
        .annotate(sent_count=Count("deliveries"))
        .order_by("-enrolled_at", "-id")
    )
    status = request.GET.get("status", "")
    if status in DripEnrolment.Status.values:
        enrolments = enrolments.filter(status=status)
    page = Paginator(enrolments, PAGE_SIZE).get_page(request.GET.get("page"))
    answers = (
        DripDelivery.objects.filter(enrolment__program=program, answer__isnull=False)
        .select_related("question", "answer", "enrolment__contact")
        .order_by("-answered_at")[:20]
    )
    context = {
        "program": program,
        "can_edit": can_edit,
        "page": page,
        "status": status,
        "statuses": DripEnrolment.Status.choices,
        "answers": answers,
    }
    return render(request, "campaigns/drips/enrolment_list.html", context)


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def drip_enrolment_stop(request, code, enrolment_code):
    program, _can_edit = get_program_for_member(request.membership, code, edit=True)
    enrolment = get_object_or_404(DripEnrolment, program=program, code=enrolment_code)
    if drips.enrolment_stop(enrolment=enrolment, reason="staff"):
        messages.success(request, _("The contact was unenrolled."))
    return redirect("drip_enrolments", code=program.code)


# --- Public opt-in form -------------------------------------------------------------------------


def _client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _rate_limited(program: DripProgram, address: str) -> bool:
    """Count this submission; True once the address has sent too many to this program."""
    limit, seconds = getattr(settings, "DRIP_OPTIN_RATE_LIMIT", OPTIN_LIMIT)
    key = f"optin:{program.pk}:{address}"
    cache.add(key, 0, timeout=seconds)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=seconds)
        count = 1
    return count > limit


@require_http_methods(["GET", "POST"])
def optin_form(request, slug):
    """Public (no sign-in): the slug is unguessable; CSRF-protected, rate-limited, honeypot."""
    program = get_object_or_404(
        DripProgram.objects.select_related("organization"),
        form_slug=slug,
        form_enabled=True,
        is_active=True,
    )
    template = "campaigns/optin_form.html"
    if request.method == "GET" and request.GET.get("done"):
        return render(request, template, {"program": program, "done": True})
    form = OptInForm(request.POST or None, program=program)
    if request.method == "GET":
        return render(request, template, {"program": program, "form": form})
    if _rate_limited(program, _client_address(request)):
        logger.warning(
            "Opt-in form %s: too many submissions from %s", program.pk, _client_address(request)
        )
        form.add_error(
            None, _("Too many sign-ups from your connection. Try again in a few minutes.")
        )
        return render(request, template, {"program": program, "form": form}, status=429)
    if form.is_bot:
        logger.info("Opt-in form %s: honeypot filled, ignored", program.pk)
        return redirect(f"{request.path}?done=1")
    if not form.is_valid():
        return render(request, template, {"program": program, "form": form}, status=400)
    data = form.cleaned_data
    try:
        drips.optin_submit(
            program=program,
            name=data["name"],
            phone=data["phone"],
            topic=data.get("topic", ""),
            language=data["language"],
            time_zone=data.get("time_zone", ""),
            detail=_("Opt-in form: %(program)s") % {"program": program.name},
        )
    except ActionSkipped as refused:
        form.add_error(None, str(refused))
        return render(request, template, {"program": program, "form": form}, status=400)
    return redirect(f"{request.path}?done=1")
