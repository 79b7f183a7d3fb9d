"""Campaigns and automations: segments, template broadcasts (now, scheduled, recurring),
throttled crash-safe dispatch, opt-out handling, drips and event-driven rules."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self):
        from campaigns import receivers  # noqa: F401
        from kernel.tasks import register_periodic

        register_periodic("campaigns.tasks.tick", 10)
        register_periodic("campaigns.tasks.automations_tick", 60)
        register_periodic("campaigns.tasks.contact_imports_resume", 15)
