from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KernelConfig(AppConfig):
    name = "kernel"
    verbose_name = _("Background work")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        import os
        import sys

        from django.conf import settings

        from kernel import outbox, tasks

        tasks.register_periodic("kernel.outbox.sweep", outbox.SWEEP_SECONDS)
        if "qcluster" in sys.argv and settings.WORKER_NICE:
            # Before the cluster forks its workers, which inherit it (settings.WORKER_NICE).
            os.nice(settings.WORKER_NICE)
