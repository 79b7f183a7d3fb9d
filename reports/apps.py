from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = _("Reports and audit")

    def ready(self):
        from kernel.tasks import register_periodic
        from reports import receivers  # noqa: F401

        register_periodic("reports.tasks.stats_refresh", 600)
        register_periodic("reports.tasks.retention_apply", 3600)
        register_periodic("reports.tasks.audit_reconcile", 60)
        register_periodic("reports.tasks.weekly_reports_send", 300)
        register_periodic("reports.tasks.alerts_evaluate", 60)
