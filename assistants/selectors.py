"""Reads for the assistant pages."""

from django.db.models import Count, Sum

from assistants.models import Assistant, ConversationAnalysis, UsageRecord
from assistants.services import _month


def assistant_list(organization):
    return (
        Assistant.objects.for_organization(organization)
        .prefetch_related("default_for_numbers")
        .annotate(source_total=Count("sources", distinct=True))
    )


def assistant_month_usage(assistant: Assistant) -> dict:
    totals = UsageRecord.objects.filter(assistant=assistant, month=_month()).aggregate(
        tokens_in=Sum("tokens_in"),
        tokens_out=Sum("tokens_out"),
        cost=Sum("cost"),
        calls=Count("id"),
    )
    return {key: value or 0 for key, value in totals.items()}


def latest_analysis(chat) -> ConversationAnalysis | None:
    return ConversationAnalysis.objects.filter(chat=chat).order_by("-created_at", "-id").first()
