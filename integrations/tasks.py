"""Thin django-q2 tasks: take ids, call services."""

from integrations import services
from kernel.tasks import register_periodic


def process_webhook_events(event_ids: list[int]) -> None:
    services.webhook_events_process(event_ids)


def drain_webhook_events() -> None:
    services.webhook_events_drain()


def process_webhook_event(event_id: int) -> None:
    """Tasks queued before batches existed."""
    services.webhook_events_process([event_id])


def sweep_webhook_events() -> int:
    return services.webhook_events_sweep()


def prune_webhook_events() -> int:
    return services.webhook_events_prune()


register_periodic("integrations.tasks.sweep_webhook_events", 15)
register_periodic("integrations.tasks.prune_webhook_events", 3600)
