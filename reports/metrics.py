"""``GET /metrics``: Prometheus text for the operator (not for organizations).

Answered to a ``Authorization: Bearer $METRICS_TOKEN`` scraper or a signed-in superuser; 404 to
anyone else, so the endpoint is not even known to exist. Every figure comes from an index or a
small cache key: a scrape every 15 s must not load the database.
"""

import os
import secrets
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from assistants.models import UsageRecord
from inbox import consumers
from integrations.models import WebhookEvent, WhatsAppNumber
from integrations.services import MAX_PROCESSING_ATTEMPTS
from kernel import counters, tasks


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and secrets.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    return bool(request.user.is_authenticated and request.user.is_superuser)


def _line(name: str, value, **labels) -> str:
    if labels:
        inner = ",".join(f'{k}="{str(v).replace(chr(34), "")}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


def collect() -> list[str]:
    now = timezone.now()
    unprocessed = WebhookEvent.objects.filter(processed_at__isnull=True)
    lines = [
        "# HELP porfin_webhook_events_pending Stored deliveries not processed yet.",
        "# TYPE porfin_webhook_events_pending gauge",
        _line("porfin_webhook_events_pending", unprocessed.count()),
        "# HELP porfin_webhook_events_given_up Deliveries left after every retry failed.",
        "# TYPE porfin_webhook_events_given_up gauge",
        _line(
            "porfin_webhook_events_given_up",
            unprocessed.filter(attempts__gte=MAX_PROCESSING_ATTEMPTS).count(),
        ),
        "# HELP porfin_webhook_events_received_5m Deliveries accepted in the last 5 minutes.",
        "# TYPE porfin_webhook_events_received_5m gauge",
        _line(
            "porfin_webhook_events_received_5m",
            WebhookEvent.objects.filter(received_at__gte=now - timedelta(minutes=5)).count(),
        ),
        "# HELP porfin_queue_depth Tasks waiting per worker cluster.",
        "# TYPE porfin_queue_depth gauge",
        "# HELP porfin_worker_heartbeat_age_seconds Seconds since each cluster's last heartbeat.",
        "# TYPE porfin_worker_heartbeat_age_seconds gauge",
    ]
    for queue in tasks.QUEUES:
        depth = tasks.queue_depth(queue)
        if depth is not None:
            lines.append(_line("porfin_queue_depth", depth, queue=queue))
        beat = tasks.last_heartbeat(queue)
        if beat is not None:
            age = round(now.timestamp() - beat, 1)
            lines.append(_line("porfin_worker_heartbeat_age_seconds", age, queue=queue))
    numbers = dict(WhatsAppNumber.objects.values_list("pk", "phone_number_id"))
    lines += [
        "# HELP porfin_sends_total Messages each number's provider accepted (use rate()).",
        "# TYPE porfin_sends_total counter",
    ]
    for number_id, count in sorted(counters.read("sends", numbers).items()):
        lines.append(
            _line("porfin_sends_total", count, number=number_id, phone_number_id=numbers[number_id])
        )
    month = now.strftime("%Y-%m")
    usage = UsageRecord.objects.filter(month=month).aggregate(calls=Count("id"), cost=Sum("cost"))
    lines += [
        "# HELP porfin_ai_calls_month Model calls this month (chat, embeddings, transcription).",
        "# TYPE porfin_ai_calls_month gauge",
        _line("porfin_ai_calls_month", usage["calls"] or 0),
        "# HELP porfin_ai_cost_month_usd Model cost this month, in US dollars.",
        "# TYPE porfin_ai_cost_month_usd gauge",
        _line("porfin_ai_cost_month_usd", float(usage["cost"] or 0)),
        "# HELP porfin_websocket_connections Live inbox sockets open in this web process.",
        "# TYPE porfin_websocket_connections gauge",
        _line("porfin_websocket_connections", consumers.open_sockets(), pid=os.getpid()),
    ]
    return lines


@never_cache
@require_GET
def metrics(request):
    if not _allowed(request):
        raise Http404
    body = "\n".join(collect()) + "\n"
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
