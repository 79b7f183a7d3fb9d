"""Flow pages: the list, the canvas editor and its JSON endpoints (save with optimistic
concurrency, check, publish), export/import, duplicate and roll back."""

import json

from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access as accounts_access
from accounts.models import Team
from flows import access, analytics, definition, nodes, selectors, services, templates_library
from flows.access import SECTION
from flows.models import FlowRun, FlowVersion

MAX_BODY = 1_000_000  # bytes of JSON an editor or an import may send


def _error(message: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


@require_GET
@accounts_access.section_required(SECTION)
def flow_list(request):
    return render(
        request,
        "flows/flow_list.html",
        {
            "flows": list(selectors.flow_list(request.organization)[:200]),
            "can_edit": accounts_access.can_edit(request.membership, SECTION),
            "library": templates_library.choices(),
        },
    )


@require_POST
@accounts_access.section_required(SECTION, edit=True)
def flow_create(request):
    name = request.POST.get("name", "").strip()
    template = request.POST.get("template", "")
    if template:
        flow = templates_library.flow_from_template(
            organization=request.organization,
            key=template,
            language=request.POST.get("language", ""),
            user=request.user,
        )
        if flow is None:
            messages.error(request, _("Unknown template."))
            return redirect("flow_list")
    elif not name:
        messages.error(request, _("Give the flow a name."))
        return redirect("flow_list")
    else:
        flow = services.flow_create(organization=request.organization, name=name, user=request.user)
    return redirect("flow_edit", code=flow.code)


@require_POST
@accounts_access.section_required(SECTION, edit=True)
def flow_import(request):
    upload = request.FILES.get("file")
    if upload is None or upload.size > MAX_BODY:
        messages.error(request, _("Choose a flow export (.json, up to 1 MB)."))
        return redirect("flow_list")
    try:
        data = json.loads(upload.read().decode("utf-8"))
        flow = services.flow_import(organization=request.organization, data=data, user=request.user)
    except (UnicodeDecodeError, json.JSONDecodeError):
        messages.error(request, _("The file is not valid JSON."))
        return redirect("flow_list")
    except definition.DefinitionError as error:
        messages.error(request, _("Nothing was imported: %(problems)s") % {"problems": error})
        return redirect("flow_list")
    messages.success(request, _("Imported %(name)s (not published yet).") % {"name": flow.name})
    return redirect("flow_edit", code=flow.code)


@require_GET
@accounts_access.section_required(SECTION)
def flow_edit(request, code):
    flow, can_edit = access.get_flow_for_member(request.membership, code)
    return render(
        request,
        "flows/flow_editor.html",
        {
            "flow": flow,
            "can_edit": can_edit,
            "catalog": _catalog(request.organization),
            "versions": list(flow.versions.all()[:20]),
            "runs": list(selectors.recent_runs(flow)),
            "funnel": analytics.flow_funnel(flow),
            "editor": {
                "revision": flow.revision,
                "name": flow.name,
                "definition": flow.draft,
                "problems": [
                    p.as_dict()
                    for p in definition.check(
                        flow.draft, for_publish=True, organization_id=flow.organization_id
                    )
                ],
                "urls": {
                    "save": reverse("flow_save", args=[flow.code]),
                    "check": reverse("flow_check", args=[flow.code]),
                    "publish": reverse("flow_publish", args=[flow.code]),
                    "media": reverse("flow_media_upload", args=[flow.code]),
                },
                "can_edit": can_edit,
                "strings": _editor_strings(),
            },
        },
    )


def _editor_strings() -> dict:
    return {
        "saved": _("Saved."),
        "saving": _("Saving…"),
        "published": _("Published."),
        "problems": _("problems"),
        "ok": _("No problems."),
        "none": _("— not connected —"),
        "delete": _("Delete step"),
        "outputs": _("Outputs"),
        "id": _("Step id"),
        "reached": _("reached"),
        "dropped": _("dropped"),
        "median": _("median"),
        "failed": _("Could not save"),
        "untitled": _("Untitled step"),
        "uploading": _("Uploading…"),
        "uploaded": _("File:"),
    }


def _catalog(organization) -> dict:
    """Node types for the editor's library and properties panel (labels translated)."""
    catalog = {}
    for node_type in nodes.all_types():
        catalog[node_type.type] = {
            "label": str(node_type.label),
            "icon": node_type.icon,
            "category": node_type.category,
            "defaults": node_type.defaults,
            "ports": node_type.ports(node_type.defaults),
            "dynamic_ports": node_type.dynamic_ports,
            "fields": [
                {
                    "name": f.name,
                    "label": str(f.label),
                    "kind": f.kind,
                    "help": str(f.help),
                    "max_length": f.max_length,
                    "choices": [[value, str(label)] for value, label in f.choices],
                }
                for f in node_type.fields
            ],
        }
    from inbox import router

    booking = router.starter("booking")
    if booking is not None and "book" in catalog:
        for field in catalog["book"]["fields"]:
            if field["name"] == "service":
                field["choices"] = [["", "—"], *booking.options(organization.pk)]
    if "assign_team" in catalog:
        teams = [
            [str(code), name]
            for code, name in Team.objects.filter(organization=organization)
            .order_by("name")
            .values_list("code", "name")
        ]
        for field in catalog["assign_team"]["fields"]:
            if field["name"] == "team":
                field["choices"] = [["", "—"], *teams]
    flows = selectors.flow_choices(organization)
    if "goto" in catalog:
        for field in catalog["goto"]["fields"]:
            if field["name"] == "flow":
                field["kind"], field["choices"] = "select", [["", "—"], *flows]
    return catalog


def _json_body(request) -> dict | None:
    if len(request.body) > MAX_BODY:
        return None
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


@require_POST
@accounts_access.section_required(SECTION, edit=True)
def flow_save(request, code):
    """Save the draft made from ``revision``; 409 when someone else saved meanwhile."""
    flow = access.get_editable_flow_for_member(request.membership, code)
    data = _json_body(request)
    if data is None or not isinstance(data.get("revision"), int):
        return _error(_("Send JSON with the flow's definition and the revision it was made from."))
    try:
        flow = services.draft_save(
            flow=flow,
            draft=data.get("definition"),
            revision=data["revision"],
            name=data.get("name"),
        )
    except definition.DefinitionError as error:
        return _error(str(error), problems=[p.as_dict() for p in error.problems])
    except services.StaleRevision as stale:
        return _error(str(stale), status=409, revision=stale.current)
    problems = definition.check(flow.draft, for_publish=True, organization_id=flow.organization_id)
    return JsonResponse({"revision": flow.revision, "problems": [p.as_dict() for p in problems]})


@require_POST
@accounts_access.section_required(SECTION)
def flow_check(request, code):
    flow, _can_edit = access.get_flow_for_member(request.membership, code)
    data = _json_body(request)
    if data is None:
        return _error(_("Send the definition as JSON."))
    problems = definition.check(
        data.get("definition"), for_publish=True, organization_id=flow.organization_id
    )
    return JsonResponse({"problems": [p.as_dict() for p in problems]})


@require_POST
@accounts_access.section_required(SECTION, edit=True)
def flow_publish(request, code):
    flow = access.get_editable_flow_for_member(request.membership, code)
    try:
        version = services.flow_publish(flow=flow, user=request.user)
    except definition.DefinitionError as error:
        if request.headers.get("accept", "").startswith("application/json"):
            return _error(str(error), problems=[p.as_dict() for p in error.problems])
        messages.error(request, _("Not published: %(problems)s") % {"problems": error})
        return redirect("flow_edit", code=flow.code)
    text = _("Version %(n)d of %(name)s is live.") % {"n": version.number, "name": flow.name}
    if request.headers.get("accept", "").startswith("application/json"):
        return JsonResponse({"version": version.number, "message": text})
    messages.success(request, text)
    return redirect("flow_edit", code=flow.code)


@require_POST
@accounts_access.section_required(SECTION, edit=True)
def flow_unpublish(request, code):
    flow = access.get_editable_flow_for_member(request.membership, code)
    services.flow_unpublish(flow=flow)
    messages.success(
        request, _("%(name)s no longer starts for new conversations.") % {"name": flow.name}
    )
    return redirect("flow_edit", code=flow.code)


@require_POST
@accounts_access.section_required(SECTION, edit=True)
def flow_rollback(request, code, number):
    flow = access.get_editable_flow_for_member(request.membership, code)
    version = get_object_or_404(FlowVersion, flow=flow, number=number)
    services.flow_rollback(flow=flow, version=version)
    messages.success(request, _("Version %(n)d is live again.") % {"n": number})
    return redirect("flow_edit", code=flow.code)


@require_POST
@accounts_access.section_required(SECTION, edit=True)
def flow_duplicate(request, code):
    flow = access.get_editable_flow_for_member(request.membership, code)
    copy = services.flow_duplicate(flow=flow, user=request.user)
    return redirect("flow_edit", code=copy.code)


@require_GET
@accounts_access.section_required(SECTION)
def flow_export(request, code):
    flow, _can_edit = access.get_flow_for_member(request.membership, code)
    body = json.dumps(services.flow_export(flow=flow), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{slugify(flow.name) or "flow"}.json"'
    return response


@require_http_methods(["GET", "POST"])
@accounts_access.section_required(SECTION, edit=True)
def flow_delete(request, code):
    """Confirm, then delete. While conversations are in the flow the page says how many and
    deletes only when asked to stop them too."""
    flow = access.get_editable_flow_for_member(request.membership, code)
    active = FlowRun.objects.filter(flow=flow, status__in=FlowRun.ACTIVE).count()
    context = {"flow": flow, "active": active, "total": flow.runs.count()}
    if request.method == "POST":
        if request.POST.get("name", "").strip() != flow.name:
            context["error"] = _("Type the flow's name to confirm.")
            return render(request, "flows/flow_delete.html", context, status=422)
        try:
            stopped = services.flow_delete(flow=flow, stop_runs=bool(request.POST.get("stop_runs")))
        except services.FlowBusy as busy:
            context["error"] = str(busy) + " " + _("Tick “stop them” to delete it anyway.")
            return render(request, "flows/flow_delete.html", context, status=409)
        text = _("Flow %(name)s deleted.") % {"name": flow.name}
        if stopped:
            text += " " + _("%(n)d conversations in it were stopped.") % {"n": stopped}
        messages.success(request, text)
        return redirect("flow_list")
    return render(request, "flows/flow_delete.html", context)


@require_POST
@accounts_access.section_required(SECTION, edit=True)
def flow_media_upload(request, code):
    """A file for a message step (multipart ``file``); answers its id for the step's props."""
    from django.core.exceptions import ValidationError

    from flows import media as flow_media

    access.get_editable_flow_for_member(request.membership, code)
    upload = request.FILES.get("file")
    if upload is None:
        return _error(_("Choose a file to upload."))
    try:
        media = flow_media.flow_media_add(organization=request.organization, upload=upload)
    except ValidationError as error:
        return _error(error.messages[0], status=422)
    return JsonResponse(
        {
            "media": str(media.code),
            "filename": media.filename,
            "kind": flow_media.kind_of(media.mime_type),
            "size": media.size,
        }
    )
