"""Flow editing: create, save the draft (optimistic concurrency), publish, roll back,
duplicate, import. Runs are in ``flows.runtime``."""

from django.db import transaction
from django.db.models import F, Max
from django.utils.translation import gettext as _

from flows import definition as flow_definition
from flows.models import Flow, FlowVersion
from kernel.memo import ProcessMemo


class StaleRevision(Exception):
    """Someone saved the flow after this editor loaded it."""

    def __init__(self, current: int):
        self.current = current
        super().__init__(
            _(
                "Someone else saved this flow meanwhile (now revision %(n)d). Reload to see "
                "their changes; yours were not saved."
            )
            % {"n": current}
        )


triggers_memo = ProcessMemo(ttl=2.0)


def flows_changed(organization_id: int) -> None:
    triggers_memo.forget(organization_id)


def flow_create(
    *,
    organization,
    name: str,
    user=None,
    draft: dict | None = None,
    description: str = "",
    template_key: str = "",
) -> Flow:
    flow = Flow.objects.create(
        organization=organization,
        name=name.strip()[:120],
        description=description[:500],
        draft=(
            flow_definition.validated(draft, organization_id=organization.pk)
            if draft is not None
            else flow_definition.empty()
        ),
        created_by=user,
        template_key=template_key,
    )
    return flow


@transaction.atomic
def draft_save(*, flow: Flow, draft: dict, revision: int, name: str | None = None) -> Flow:
    """Store the editor's draft when it was made from the current ``revision``; raises
    ``DefinitionError`` (nothing saved) or ``StaleRevision``."""
    cleaned = flow_definition.validated(draft, organization_id=flow.organization_id)
    changes = {"draft": cleaned, "revision": F("revision") + 1}
    if name is not None and name.strip():
        changes["name"] = name.strip()[:120]
    if not Flow.objects.filter(pk=flow.pk, revision=revision).update(**changes):
        current = Flow.objects.values_list("revision", flat=True).get(pk=flow.pk)
        raise StaleRevision(current)
    flow.refresh_from_db()
    return flow


@transaction.atomic
def flow_publish(*, flow: Flow, user=None) -> FlowVersion:
    """The draft becomes a new immutable version and goes live (runs in progress finish on
    the version they started on). Raises ``DefinitionError`` when the draft is incomplete."""
    flow = Flow.objects.select_for_update().get(pk=flow.pk)
    definition = flow_definition.validated(
        flow.draft, for_publish=True, organization_id=flow.organization_id
    )
    number = (flow.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = FlowVersion.objects.create(
        organization_id=flow.organization_id,
        flow=flow,
        number=number,
        definition=definition,
        published_by=user,
    )
    Flow.objects.filter(pk=flow.pk).update(published=version, is_active=True)
    flows_changed(flow.organization_id)
    return version


@transaction.atomic
def flow_rollback(*, flow: Flow, version: FlowVersion) -> Flow:
    """Make an earlier version live again and load it into the draft."""
    Flow.objects.filter(pk=flow.pk).update(
        published=version, draft=version.definition, revision=F("revision") + 1
    )
    flows_changed(flow.organization_id)
    flow.refresh_from_db()
    return flow


def flow_unpublish(*, flow: Flow) -> None:
    Flow.objects.filter(pk=flow.pk).update(is_active=False)
    flows_changed(flow.organization_id)


class FlowBusy(Exception):
    """The flow still has conversations in progress and nobody said to stop them."""


def flow_delete(*, flow: Flow, stop_runs: bool = False) -> int:
    """Delete a flow with its versions, runs and their log. Refused (``FlowBusy``) while
    conversations are in it, unless ``stop_runs``: those runs are cancelled first and their
    chats released. Returns how many were stopped."""
    from flows import runtime
    from flows.models import FlowRun

    with transaction.atomic():
        Flow.objects.select_for_update().filter(pk=flow.pk).first()
        active = list(
            FlowRun.objects.select_related("chat").filter(flow=flow, status__in=FlowRun.ACTIVE)
        )
        if active and not stop_runs:
            raise FlowBusy(
                _("%(n)d conversations are in this flow right now.") % {"n": len(active)}
            )
        for run in active:
            runtime.run_cancel(run=run, reason=_("the flow was deleted"))
        # Runs point at their version with PROTECT: runs go first, then the flow (versions).
        FlowRun.objects.filter(flow=flow).delete()
        Flow.objects.filter(pk=flow.pk).update(published=None)
        flow.delete()
    flows_changed(flow.organization_id)
    return len(active)


def flow_duplicate(*, flow: Flow, user=None) -> Flow:
    return flow_create(
        organization=flow.organization,
        name=_("Copy of %(name)s") % {"name": flow.name},
        description=flow.description,
        draft=flow.draft,
        user=user,
    )


def flow_import(*, organization, data, user=None) -> Flow:
    """A new (unpublished) flow from an export; ``DefinitionError`` names what is wrong."""
    name, description, definition = flow_definition.parse_import(
        data, organization_id=organization.pk
    )
    return flow_create(
        organization=organization, name=name, description=description, draft=definition, user=user
    )


def flow_export(*, flow: Flow, version: FlowVersion | None = None) -> dict:
    definition = version.definition if version is not None else flow.draft
    return flow_definition.export(
        name=flow.name, description=flow.description, definition=definition
    )
