"""Campaign and audience pages: access check, form, service, then redirect or render."""

import uuid
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access as accounts_access
from campaigns import access, forms, imports, preflight, selectors, services
from campaigns.models import Campaign, CampaignRecipient, Segment
from inbox.services import SendRefused
from integrations.errors import IntegrationError

PAGE_SIZE = 50


def _can_edit(request) -> bool:
    return accounts_access.can_edit(request.membership, "campaigns")


# --- Campaigns --------------------------------------------------------------------------------


@require_GET
@accounts_access.section_required("campaigns")
def index(request):
    campaigns = list(selectors.campaign_list(request.organization)[:200])
    return render(
        request,
        "campaigns/campaign_list.html",
        {"campaigns": campaigns, "can_edit": _can_edit(request)},
    )


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns", edit=True)
def campaign_create(request):
    org = request.organization
    if request.method == "POST":
        form = forms.CampaignForm(request.POST, organization=org)
        if form.is_valid():
            campaign = form.save(commit=False)
            campaign.created_by = request.user
            campaign.save()
            services.ai_samples_request(campaign=campaign)
            return redirect("campaign_detail", code=campaign.code)
    else:
        form = forms.CampaignForm(
            initial={"template": request.GET.get("template", ""), "rate_per_second": 20},
            organization=org,
        )
    template = "campaigns/campaign_form.html"
    if request.htmx and request.method == "GET":
        template += "#variables"
    return render(request, template, {"form": form})


@require_GET
@accounts_access.section_required("campaigns")
def campaign_detail(request, code):
    campaign, can_edit = access.get_campaign_for_member(request.membership, code)
    if request.htmx and request.GET.get("part") == "stats":
        converted = services.campaign_counters_refresh(campaign.pk)["converted"]
        campaign.refresh_from_db()
        return render(
            request,
            "campaigns/campaign_detail.html#stats",
            {
                "campaign": campaign,
                "converted": converted,
                "waiting": selectors.campaign_wait_reason(campaign),
            },
        )
    if request.htmx and request.GET.get("part") == "ai":
        return render(
            request, "campaigns/campaign_detail.html#ai-samples", _ai_context(campaign, can_edit)
        )
    status = request.GET.get("status", "")
    page = Paginator(selectors.campaign_recipients(campaign, status), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    sample = selectors.audience_contacts(campaign).order_by("pk")[:5]
    context = {
        "campaign": campaign,
        "can_edit": can_edit,
        "page": page,
        "status": status,
        "statuses": CampaignRecipient.Status.choices,
        "failures": selectors.campaign_failures(campaign),
        "previews": services.campaign_preview(campaign=campaign, contacts=sample),
        "audience_count": selectors.audience_contacts(campaign).count(),
        "test_form": forms.TestSendForm(),
        "converted": services.campaign_converted(campaign),
        "conversion": services.campaign_conversion(campaign),
        "daily": selectors.campaign_daily(campaign, ZoneInfo(request.organization.time_zone)),
        "waiting": selectors.campaign_wait_reason(campaign),
        **_ai_context(campaign, can_edit),
    }
    return render(request, "campaigns/campaign_detail.html", context)


AI_EDITABLE = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)


def _ai_context(campaign, can_edit: bool) -> dict:
    """The assistant-written previews: one row per sampled contact, with its edit form."""
    if not services.ai_slots(campaign.variables):
        return {"ai_samples": None}
    samples = services.ai_samples(campaign)
    rows = []
    for contact in services.ai_sample_contacts(campaign):
        sample = samples.get(str(contact.code)) or {}
        form = forms.AISampleForm(campaign=campaign, texts=sample.get("texts") or {})
        rows.append({"contact": contact, "sample": sample, "form": form})
    return {
        "ai_samples": rows,
        "ai_pending": (campaign.variables.get("ai") or {}).get("state") == "pending",
        "ai_editable": can_edit and campaign.status in AI_EDITABLE,
    }


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def campaign_ai_regenerate(request, code):
    campaign = access.get_editable_campaign_for_member(request.membership, code)
    if campaign.status not in AI_EDITABLE:
        messages.error(request, _("The texts are already written for this run."))
    elif services.ai_samples_request(
        campaign=campaign, contact_code=request.POST.get("contact", "")
    ):
        messages.success(request, _("The assistant is writing the previews."))
    return redirect("campaign_detail", code=campaign.code)


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def campaign_ai_edit(request, code, contact):
    campaign = access.get_editable_campaign_for_member(request.membership, code)
    if campaign.status not in AI_EDITABLE:
        messages.error(request, _("The texts are already written for this run."))
        return redirect("campaign_detail", code=campaign.code)
    sampled = {str(c.code) for c in services.ai_sample_contacts(campaign)}
    if str(contact) not in sampled:
        raise Http404
    form = forms.AISampleForm(request.POST, campaign=campaign, texts={})
    if form.is_valid():
        services.ai_sample_edit(campaign=campaign, contact_code=str(contact), texts=form.texts())
        messages.success(request, _("Text saved: this contact receives it as written."))
    else:
        errors = "; ".join(e for field in form.errors.values() for e in field)
        messages.error(request, _("Text not saved: %(error)s") % {"error": errors})
    return redirect("campaign_detail", code=campaign.code)


def _campaign_action(request, code, action, done_message):
    campaign = access.get_editable_campaign_for_member(request.membership, code)
    if action(campaign=campaign):
        messages.success(request, done_message)
    else:
        messages.error(request, _("The campaign cannot do that in its current state."))
    return redirect("campaign_detail", code=campaign.code)


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns", edit=True)
def campaign_launch(request, code):
    """GET: what the launch will do (counts, skips, estimated cost); POST with ``confirm``
    launches. A POST without it shows the same page, so nothing goes out by one stray click."""
    campaign = access.get_editable_campaign_for_member(request.membership, code)
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        if campaign.status != Campaign.Status.DRAFT:
            messages.error(request, _("The campaign cannot do that in its current state."))
            return redirect("campaign_detail", code=campaign.code)
        context = {
            "campaign": campaign,
            "summary": preflight.launch_summary(campaign),
            "previews": services.campaign_preview(
                campaign=campaign,
                contacts=selectors.audience_contacts(campaign).order_by("pk")[:3],
            ),
        }
        return render(request, "campaigns/campaign_launch.html", context)
    return _campaign_action(
        request,
        code,
        lambda campaign: (
            services.campaign_launch(campaign=campaign).status == Campaign.Status.SCHEDULED
        ),
        _("Campaign scheduled."),
    )


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def campaign_pause(request, code):
    return _campaign_action(request, code, services.campaign_pause, _("Campaign paused."))


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def campaign_resume(request, code):
    return _campaign_action(request, code, services.campaign_resume, _("Campaign resumed."))


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def campaign_cancel(request, code):
    return _campaign_action(request, code, services.campaign_cancel, _("Campaign cancelled."))


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def campaign_test_send(request, code):
    campaign = access.get_editable_campaign_for_member(request.membership, code)
    form = forms.TestSendForm(request.POST)
    if form.is_valid():
        try:
            services.campaign_test_send(
                campaign=campaign, phone=form.cleaned_data["phone"], actor=request.user
            )
            messages.success(request, _("Test message sent."))
        except (SendRefused, services.MissingVariable, IntegrationError) as error:
            messages.error(request, _("Test not sent: %(error)s") % {"error": error})
    else:
        messages.error(request, _("Give a phone number for the test."))
    return redirect("campaign_detail", code=campaign.code)


# --- Contacts ---------------------------------------------------------------------------------


def _filtered_contacts(request):
    form = forms.ContactFilterForm(request.GET or None, organization=request.organization)
    filters = form.filters() if request.GET else {}
    query = form.cleaned_data.get("q", "") if form.is_bound and form.is_valid() else ""
    return form, filters, selectors.contact_list(request.organization, query=query, filters=filters)


@require_GET
@accounts_access.section_required("campaigns")
def contact_list(request):
    form, filters, contacts = _filtered_contacts(request)
    if request.htmx and request.GET.get("part") == "count":
        return render(
            request, "campaigns/contact_list.html#count", {"count": contacts.count(), "form": form}
        )
    page = Paginator(contacts, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "count": page.paginator.count,
        "filters": filters,
        "querystring": request.GET.urlencode(),
        "can_edit": _can_edit(request),
        "bulk_form": forms.BulkTagForm(),
        "static_lists": Segment.objects.filter(
            organization=request.organization, kind=Segment.Kind.STATIC
        ),
    }
    return render(request, "campaigns/contact_list.html", context)


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns")
def contact_edit(request, code):
    contact, can_edit = access.get_contact_for_member(request.membership, code)
    form = forms.ContactForm(request.POST or None, instance=contact)
    if request.method == "POST":
        if not can_edit:
            return HttpResponse(status=403)
        if form.is_valid():
            data = {**form.cleaned_data}
            services.contact_update(contact=contact, actor=request.user, data=data)
            messages.success(request, _("Contact saved."))
            return redirect("campaign_contact_edit", code=contact.code)
    history = contact.consent_events.select_related("actor")[:20]
    return render(
        request,
        "campaigns/contact_form.html",
        {"contact": contact, "form": form, "can_edit": can_edit, "history": history},
    )


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def contact_bulk(request):
    codes = [c for c in request.POST.getlist("contact") if _is_uuid(c)]
    if not codes:
        messages.error(request, _("Select at least one contact."))
    elif request.POST.get("list"):
        segment, _can = access.get_segment_for_member(request.membership, request.POST["list"])
        added = services.segment_add_contacts(segment=segment, codes=codes)
        messages.success(
            request, _("%(n)s contacts added to %(list)s.") % {"n": added, "list": segment}
        )
    else:
        add = [t for t in request.POST.get("add", "").split(",") if t.strip()]
        remove = [t for t in request.POST.get("remove", "").split(",") if t.strip()]
        count = services.contacts_tag(
            organization=request.organization, codes=codes, add=add, remove=remove
        )
        messages.success(request, _("Tags updated on %(n)s contacts.") % {"n": count})
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect("campaign_contact_list")  # never off-site (open redirect)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


@require_GET
@accounts_access.section_required("campaigns")
def contact_export(request):
    _form, _filters, contacts = _filtered_contacts(request)
    response = HttpResponse(services.contacts_export(contacts), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
    return response


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns", edit=True)
def contact_import(request):
    """Upload, then map the columns; the import itself runs in the background."""
    token = request.POST.get("token", "")
    pending = request.session.get("contact_import")
    path = imports.upload_path(request.organization, token) if token else ""
    if token and pending == token and default_storage.exists(path):
        with default_storage.open(path) as handle:
            header, rows = services.import_file_read(handle.read())
        form = forms.ImportMappingForm(request.POST, header=header)
        if form.is_valid():
            job = imports.import_start(
                organization=request.organization,
                actor=request.user,
                path=path,
                header=header,
                mapping=form.mapping(),
                rows=len(rows),
            )
            request.session.pop("contact_import", None)
            return redirect("campaign_contact_import_detail", code=job.code)
        return render(
            request, "campaigns/contact_import.html", {"mapping_form": form, "token": token}
        )
    upload = forms.ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and upload.is_valid():
        token = uuid.uuid4().hex
        default_storage.save(
            imports.upload_path(request.organization, token), ContentFile(upload.data_bytes)
        )
        request.session["contact_import"] = token
        return render(
            request,
            "campaigns/contact_import.html",
            {
                "mapping_form": forms.ImportMappingForm(header=upload.header),
                "token": token,
                "preview": upload.rows[:5],
                "header": upload.header,
                "rows": len(upload.rows),
            },
        )
    return render(request, "campaigns/contact_import.html", {"upload_form": upload})


@require_GET
@accounts_access.section_required("campaigns", edit=True)
def contact_import_detail(request, code):
    """The import's progress; htmx polls the progress part until it has finished."""
    job = access.get_contact_import_for_member(request.membership, code)
    template = "campaigns/contact_import_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, {"job": job})


@require_GET
@accounts_access.section_required("campaigns", edit=True)
def contact_import_errors(request, code):
    job = access.get_contact_import_for_member(request.membership, code)
    response = HttpResponse(imports.errors_csv(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-errors-{job.code}.csv"'
    return response


# --- Segments ---------------------------------------------------------------------------------


@require_GET
@accounts_access.section_required("campaigns")
def segment_list(request):
    segments = list(selectors.segment_list(request.organization))
    for segment in segments:
        segment.live_count = selectors.segment_contacts(segment).count()
    return render(
        request,
        "campaigns/segment_list.html",
        {"segments": segments, "can_edit": _can_edit(request), "form": forms.SegmentForm()},
    )


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def segment_create(request):
    form = forms.SegmentForm(request.POST)
    filter_form = forms.ContactFilterForm(request.POST, organization=request.organization)
    if form.is_valid():
        filters = filter_form.filters() if form.cleaned_data["kind"] == Segment.Kind.DYNAMIC else {}
        segment = services.segment_save(
            organization=request.organization,
            segment=None,
            name=form.cleaned_data["name"],
            kind=form.cleaned_data["kind"],
            filters=filters,
        )
        messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
        return redirect("segment_detail", code=segment.code)
    messages.error(request, _("Give the segment a name."))
    return redirect("segment_list")


@require_GET
@accounts_access.section_required("campaigns")
def segment_detail(request, code):
    segment, can_edit = access.get_segment_for_member(request.membership, code)
    contacts = selectors.segment_contacts(segment)
    page = Paginator(contacts.order_by("name", "phone"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "campaigns/segment_detail.html",
        {"segment": segment, "page": page, "count": page.paginator.count, "can_edit": can_edit},
    )


@require_POST
@accounts_access.section_required("campaigns", edit=True)
def segment_delete(request, code):
    segment, _can = access.get_segment_for_member(request.membership, code)
    if segment.campaigns.exists():
        messages.error(request, _("Campaigns use this segment; it cannot be deleted."))
        return redirect("segment_detail", code=segment.code)
    segment.delete()
    messages.success(request, _("Segment deleted."))
    return redirect("segment_list")


@require_http_methods(["GET", "POST"])
@accounts_access.section_required("campaigns")
def audience_settings(request):
    prefs = services.audience_settings_for(request.organization)
    form = forms.AudienceSettingsForm(request.POST or None, instance=prefs)
    if request.method == "POST":
        if not _can_edit(request):
            return HttpResponse(status=403)
        if form.is_valid():
            form.save()
            messages.success(request, _("Opt-out settings saved."))
            return redirect("audience_settings")
    return render(
        request, "campaigns/audience_settings.html", {"form": form, "can_edit": _can_edit(request)}
    )
