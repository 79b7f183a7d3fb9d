"""Thin django-q2 tasks: take ids, call services."""

from config.tasks import register_periodic
from integrations import services


def process_webhook_event(event_id: int) -> None:
    services.webhook_event_process(event_id)


def sweep_webhook_events() -> int:
    return services.webhook_events_sweep()


register_periodic("integrations.tasks.sweep_webhook_events", 60)
