"""Reads for the flow pages and the API."""

from django.db.models import Count, Q

from flows.models import Flow, FlowRun


def flow_list(organization):
    return (
        Flow.objects.filter(organization=organization)
        .select_related("published")
        .annotate(
            active_runs=Count("runs", filter=Q(runs__status__in=FlowRun.ACTIVE)),
            total_runs=Count("runs"),
        )
        .order_by("name")
    )


def flow_choices(organization) -> list[tuple[str, str]]:
    return [
        (str(code), name)
        for code, name in Flow.objects.filter(organization=organization).values_list("code", "name")
    ]


def recent_runs(flow, limit: int = 20):
    return flow.runs.select_related("chat__contact", "version").order_by("-started_at")[:limit]
