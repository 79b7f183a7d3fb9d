"""Per-flow analytics: how many runs entered, completed, handed off, and per node how many
reached it, stopped there without finishing, and the median time spent there."""

from statistics import median

from django.db.models import Count

from flows.models import FlowRun, FlowRunStep

DROPPED = (FlowRun.Status.EXPIRED, FlowRun.Status.CANCELLED, FlowRun.Status.FAILED)
STEPS_SAMPLED = 20_000  # the most recent steps the medians are computed over


def flow_funnel(flow) -> dict:
    by_status = dict(
        FlowRun.objects.filter(flow=flow)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    entered = sum(by_status.values())
    nodes: dict[str, dict] = {}
    reached = (
        FlowRunStep.objects.filter(run__flow=flow)
        .values("node")
        .annotate(runs=Count("run", distinct=True))
    )
    for row in reached:
        nodes[row["node"]] = {"entered": row["runs"], "dropped": 0, "median_ms": None}
    for node, count in (
        FlowRun.objects.filter(flow=flow, status__in=DROPPED)
        .order_by()
        .values_list("node")
        .annotate(n=Count("id"))
        .values_list("node", "n")
    ):
        nodes.setdefault(node, {"entered": 0, "dropped": 0, "median_ms": None})["dropped"] = count
    durations: dict[str, list[int]] = {}
    for node, duration in (
        FlowRunStep.objects.filter(run__flow=flow)
        .order_by("-id")
        .values_list("node", "duration_ms")[:STEPS_SAMPLED]
    ):
        durations.setdefault(node, []).append(duration)
    for node, values in durations.items():
        nodes.setdefault(node, {"entered": 0, "dropped": 0, "median_ms": None})["median_ms"] = int(
            median(values)
        )
    return {
        "entered": entered,
        "completed": by_status.get(FlowRun.Status.COMPLETED, 0),
        "handoffs": by_status.get(FlowRun.Status.HANDED_OFF, 0),
        "dropped": sum(by_status.get(s, 0) for s in DROPPED),
        "active": sum(by_status.get(s, 0) for s in FlowRun.ACTIVE),
        "nodes": nodes,
    }
