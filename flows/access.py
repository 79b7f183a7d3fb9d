"""One access function per model; flows belong to the "assistants" section of the role matrix
(admins and managers edit, operators look, agents do not see them). Other organizations'
flows answer 404."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from accounts import access
from flows.models import Flow, FlowRun

SECTION = "assistants"


def get_flow_for_member(membership, code) -> tuple[Flow, bool]:
    flow = get_object_or_404(
        Flow.objects.select_related("published", "organization"),
        organization=membership.organization,
        code=code,
    )
    return flow, access.can_edit(membership, SECTION)


def get_editable_flow_for_member(membership, code) -> Flow:
    flow, can_edit = get_flow_for_member(membership, code)
    if not can_edit:
        raise PermissionDenied
    return flow


def get_run_for_member(membership, code) -> FlowRun:
    return get_object_or_404(
        FlowRun.objects.select_related("flow", "version", "chat__contact"),
        organization=membership.organization,
        code=code,
    )
