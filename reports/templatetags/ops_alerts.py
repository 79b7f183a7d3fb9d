"""``{% open_alerts %}``: the open operational alerts in the notification bell, on every page
(admins: their organization's; superusers: the installation's). One query, for them only."""

from django import template
from django.db.models import Q

from accounts.models import Role
from reports.alerts import alert_text
from reports.models import Alert

register = template.Library()


@register.inclusion_tag("reports/_open_alerts.html", takes_context=True)
def open_alerts(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"alerts": []}
    membership = getattr(request, "membership", None)
    query = Q(pk__in=[])
    if membership is not None and membership.role == Role.ADMIN:
        query |= Q(organization_id=membership.organization_id)
    if user.is_superuser:
        query |= Q(organization=None)
    if query == Q(pk__in=[]):
        return {"alerts": []}
    alerts = list(Alert.objects.filter(query, cleared_at=None)[:10])
    return {"alerts": [(alert, alert_text(alert)) for alert in alerts]}
